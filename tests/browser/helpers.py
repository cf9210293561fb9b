"""What the browser tests share: waits that tolerate re-rendered elements, reads of the page
in one script call, and the editor driven through the page's test hook (``hwEditor``).
"""

from __future__ import annotations

import pathlib
from collections.abc import Callable
from typing import Any

from selenium import webdriver
from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import WebDriverWait

# Waits for the pipeline (command -> executor -> worker -> projector -> page poll); generous
# for a loaded machine, never reached when things work.
WAIT_S = 30.0
Shot = Callable[[str], pathlib.Path]


def until(driver: webdriver.Chrome, check: Callable[[webdriver.Chrome], Any], what: str) -> Any:
    # The pages re-render as data arrives: an element found a moment ago may be replaced.
    ignored = (NoSuchElementException, StaleElementReferenceException)
    wait = WebDriverWait(driver, WAIT_S, poll_frequency=0.1, ignored_exceptions=ignored)
    return wait.until(check, message=what)


def find(driver: webdriver.Chrome, css: str) -> WebElement:
    return until(driver, lambda d: d.find_element(By.CSS_SELECTOR, css), f"element {css}")


def open_page(driver: webdriver.Chrome, url: str) -> None:
    driver.get(url)
    # A marker that a reload would erase: "live" means it is still there at the end.
    driver.execute_script("window.__hwNoReload = true;")


def still_same_page(driver: webdriver.Chrome) -> bool:
    return bool(driver.execute_script("return window.__hwNoReload === true;"))


def type_yaml(driver: webdriver.Chrome, text: str) -> None:
    """Replace the editor's whole text (one transaction, as a paste would)."""
    wait_editor(driver)
    script = "document.querySelector('#flow-editor').hwEditor.setValue(arguments[0]);"
    driver.execute_script(script, text)


def state_of(driver: webdriver.Chrome) -> str:
    """The state badge as shown now (read in one script call: the badge is re-rendered)."""
    script = "return document.getElementById('exec-state')?.dataset.state;"
    return str(driver.execute_script(script))


def timeline(driver: webdriver.Chrome) -> dict[str, str]:
    """Task id -> state of every timeline row, read in one call (the rows are re-rendered)."""
    script = (
        "return [...document.querySelectorAll('#gantt .row')]"
        ".map((r) => [r.dataset.taskId, r.dataset.state]);"
    )
    return {task: state for task, state in driver.execute_script(script)}


def click(driver: webdriver.Chrome, css: str) -> bool:
    """Click; inside ``until`` so that a row re-rendered under the pointer is found again."""
    driver.find_element(By.CSS_SELECTOR, css).click()
    return True


def attr(driver: webdriver.Chrome, css: str, name: str) -> str | None:
    return driver.find_element(By.CSS_SELECTOR, css).get_attribute(name)


def count(driver: webdriver.Chrome, css: str) -> int:
    return len(driver.find_elements(By.CSS_SELECTOR, css))


def text(driver: webdriver.Chrome, css: str) -> str:
    return str(driver.find_element(By.CSS_SELECTOR, css).text)


def flow_yaml(flow_id: str, namespace: str, tasks: str, extra: str = "") -> str:
    return f"id: {flow_id}\nnamespace: {namespace}\ntasks:\n{tasks}{extra}"


def wait_editor(driver: webdriver.Chrome) -> None:
    script = "return !!document.querySelector('#flow-editor')?.hwEditor;"
    until(driver, lambda d: d.execute_script(script), "the editor")


def editor_text(driver: webdriver.Chrome) -> str:
    script = "return document.querySelector('#flow-editor').hwEditor.getValue();"
    return str(driver.execute_script(script))
