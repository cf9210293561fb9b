"""The flow editor in headless Chromium: completion from the flow schema (keys of the task's
own type, enum values, task types, expression variables) typed with real keystrokes, hover
docs under the real mouse, problems and warnings inline, the topology's zoom and fit, and the
revisions tab's diff and restore.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from selenium import webdriver
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.actions.action_builder import ActionBuilder
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

from tests.browser.helpers import (
    Shot,
    attr,
    count,
    editor_text,
    find,
    open_page,
    text,
    type_yaml,
    until,
    wait_editor,
)
from tests.browser.stack import BrowserStack

pytestmark = [
    pytest.mark.browser,
    pytest.mark.kafka,
    pytest.mark.postgres,
    pytest.mark.timeout(300),
]

FLOW = """\
id: typed
namespace: {ns}
inputs:
  - id: name
    type: STRING
    defaults: world
tasks:
  - id: greet
    type: io.kestra.plugin.core.log.Log
    message: "hi {{{{ }}}}"
{tail}"""


def at(driver: webdriver.Chrome, line: int, column: int) -> None:
    script = "document.querySelector('#flow-editor').hwEditor.reveal(arguments[0], arguments[1]);"
    driver.execute_script(script, line, column)


def keys(driver: webdriver.Chrome, *typed: str) -> None:
    ActionChains(driver).send_keys(*typed).perform()


def accept(driver: webdriver.Chrome) -> None:
    """Enter on the open completion list. CodeMirror ignores Enter for 75 ms after the list
    opens (so a fast typist's Enter is a newline, not a pick): wait that out first."""
    ActionChains(driver).pause(0.2).send_keys(Keys.ENTER).perform()


def options(driver: webdriver.Chrome) -> list[str]:
    script = (
        "return [...document.querySelectorAll('.cm-tooltip-autocomplete li')]"
        ".map((li) => li.querySelector('.cm-completionLabel').textContent);"
    )
    return list(driver.execute_script(script))


def line_of(driver: webdriver.Chrome, number: int) -> str:
    return editor_text(driver).split("\n")[number - 1]


def hover(driver: webdriver.Chrome, line: int, column: int) -> str:
    """Move the real pointer over a line and column; the tooltip's text."""
    script = "return document.querySelector('#flow-editor').hwEditor.coordsAt(...arguments);"
    where = driver.execute_script(script, line, column)
    away = ActionBuilder(driver)
    away.pointer_action.move_to_location(0, 0)
    away.perform()
    until(driver, lambda d: not count(d, ".cm-tooltip-hover"), "no tooltip left")
    action = ActionBuilder(driver)
    action.pointer_action.move_to_location(int(where["x"]), int(where["y"]))
    action.perform()
    css = ".cm-tooltip-hover .hw-doc"
    return str(until(driver, lambda d: d.find_element(By.CSS_SELECTOR, css).text, "hover docs"))


def test_completion_and_hover_come_from_the_schema(
    page: webdriver.Chrome, stack: BrowserStack, shot: Shot
) -> None:
    open_page(page, f"{stack.url}/ui/#/flows/new")
    type_yaml(page, FLOW.format(ns=stack.namespace, tail="    \n"))
    until(page, lambda d: attr(d, "#flow-status", "class") == "valid", "valid")

    # A key inside the Log task: only Log's properties, not those already written.
    at(page, 11, 5)
    keys(page, "lev")
    until(page, lambda d: "level" in options(d), "key completion")
    offered = options(page)
    assert "logLevel" in offered, offered
    assert "format" not in offered  # a Return property
    assert "message" not in offered  # already there
    shot("editor-completion-key")
    accept(page)
    until(page, lambda d: line_of(d, 11) == "    level: ", "the key inserted")
    # Its enum values.
    keys(page, "WA")
    until(page, lambda d: "WARN" in options(d), "value completion")
    assert "INFO" not in options(page)  # filtered by what was typed
    accept(page)
    until(page, lambda d: line_of(d, 11) == "    level: WARN", "the value inserted")

    # Task types with their documentation, picked from the list with the mouse.
    type_yaml(page, FLOW.format(ns=stack.namespace, tail="  - id: second\n    type: \n"))
    at(page, 12, 11)
    keys(page, "Paral")
    parallel = "io.kestra.plugin.core.flow.Parallel"
    until(page, lambda d: parallel in options(d), "task types")
    css = ".cm-tooltip-autocomplete li"
    for li in page.find_elements(By.CSS_SELECTOR, css):
        if li.text.startswith(parallel):
            li.click()
            break
    until(page, lambda d: line_of(d, 12) == f"    type: {parallel}", "the type inserted")

    # Variables inside {{ }}: this flow's inputs and task ids.
    at(page, 10, 21)  # between "{{ " and "}}"
    keys(page, "inp")
    until(page, lambda d: "inputs.name" in options(d), "expression completion")
    accept(page)
    until(page, lambda d: '"hi {{ inputs.name}}"' in line_of(d, 10), "the variable inserted")
    at(page, 10, 21)
    keys(page, "outputs.")
    until(page, lambda d: "outputs.greet" in options(d), "task outputs offered")
    assert "outputs.second" in options(page)
    keys(page, Keys.ESCAPE)

    # Hover docs: a required key, and a task type's own description.
    doc = hover(page, 10, 6)
    assert "message" in doc, doc
    assert "required" in doc, doc
    shot("editor-hover-key")
    doc = hover(page, 9, 30)
    assert "Write one message" in doc, doc
    assert "level" in doc  # its properties are listed
    shot("editor-hover-type")


BROKEN = """\
id: warned
namespace: {ns}
tasks:
  - id: hello
    type: io.kestra.plugin.core.log.Log
    message: "{{{{ inputs.name | nosuchfilter }}}}"
  - id: bad
    type: io.kestra.plugin.core.log.Log
    message: hi
    level: LOUD
"""


def test_problems_and_warnings_are_shown_where_they_are(
    page: webdriver.Chrome, stack: BrowserStack, shot: Shot
) -> None:
    open_page(page, f"{stack.url}/ui/#/flows/new")
    type_yaml(page, BROKEN.format(ns=stack.namespace))
    until(page, lambda d: count(d, "#flow-problems li.warning"), "the warning listed")
    until(page, lambda d: count(d, "#flow-problems li.error"), "the problem listed")
    status = text(page, "#flow-status")
    assert "1 problem" in status, status
    assert "1 warning" in status, status
    warning = text(page, "#flow-problems li.warning")
    assert "line 6" in warning, warning
    assert "nosuchfilter" in warning, warning
    error = find(page, "#flow-problems li.error")
    assert error.get_attribute("data-line") == "10", error.text
    until(page, lambda d: count(d, ".cm-lint-marker-warning"), "warning in the gutter")
    assert count(page, ".cm-lint-marker-error") == 1
    assert count(page, ".cm-lintRange-error") >= 1
    # Clicking a problem puts the cursor on it.
    error.click()
    cursor = page.execute_script("return document.querySelector('#flow-editor').hwEditor.cursor();")
    assert cursor["line"] == 10, cursor
    shot("editor-problems-and-warnings")


WIDE = """\
id: wide
namespace: {ns}
triggers:
  - id: every_minute_of_the_working_day
    type: io.kestra.plugin.core.trigger.Schedule
    cron: "* 9-17 * * 1-5"
tasks:
  - id: a_task_with_a_rather_long_identifier_indeed
    type: io.kestra.plugin.core.log.Log
    message: one
  - id: fan_out
    type: io.kestra.plugin.core.flow.Parallel
    tasks:
{children}
  - id: afterwards
    type: io.kestra.plugin.core.debug.Return
    format: done
"""


def boxes_inside(driver: webdriver.Chrome) -> dict[str, Any]:
    """Every task box's rectangle against the drawing's: nothing drawn outside it, none empty."""
    script = """
      const svg = document.querySelector('#topology-svg').getBoundingClientRect();
      const out = {};
      for (const g of document.querySelectorAll('#topology-svg g.node[data-task-id]')) {
        const r = g.querySelector('rect').getBoundingClientRect();
        const t = [...g.querySelectorAll('text')].map((x) => x.getBoundingClientRect());
        const inside = (b) => b.left >= r.left - 0.5 && b.right <= r.right + 0.5;
        out[g.dataset.taskId] = r.width > 0 && r.left >= svg.left - 0.5
          && r.right <= svg.right + 0.5 && t.every(inside);
      }
      return out;
    """
    return dict(driver.execute_script(script))


def test_topology_fits_zooms_and_clips_nothing(
    page: webdriver.Chrome, stack: BrowserStack, shot: Shot
) -> None:
    children = "\n".join(
        f"      - id: branch_number_{i}\n        type: io.kestra.plugin.core.debug.Return\n"
        f"        format: b{i}"
        for i in range(6)
    )
    open_page(page, f"{stack.url}/ui/#/flows/new")
    type_yaml(page, WIDE.format(ns=stack.namespace, children=children))
    until(page, lambda d: attr(d, "#flow-status", "class") == "valid", "valid")
    until(page, lambda d: len(boxes_inside(d)) == 9, "every task drawn")
    inside = boxes_inside(page)
    assert all(inside.values()), inside
    # Fitted: the whole drawing is within the box, no scrolling needed.
    fits = (
        "const c = document.querySelector('#topology-canvas');"
        "return c.scrollWidth <= c.clientWidth + 1;"
    )
    until(page, lambda d: d.execute_script(fits), "fitted to the box")
    long_id = "a_task_with_a_rather_long_identifier_indeed"
    label = page.find_element(By.CSS_SELECTOR, f"g.node[data-task-id='{long_id}'] text")
    assert label.text == long_id  # not cut: the box is as wide as its id
    shot("topology-fitted")
    fitted = float(str(attr(page, "#topology-canvas", "data-zoom")))
    find(page, "#topology-zoom-in").click()
    find(page, "#topology-zoom-in").click()
    zoomed = float(str(attr(page, "#topology-canvas", "data-zoom")))
    assert zoomed == pytest.approx(fitted * 1.5625, rel=0.01)
    assert not page.execute_script(fits)  # now it scrolls
    shot("topology-zoomed")
    find(page, "#topology-fit").click()
    assert float(str(attr(page, "#topology-canvas", "data-zoom"))) == pytest.approx(fitted)
    assert page.execute_script(fits)


REV = """\
id: revised
namespace: {ns}
tasks:
  - id: hello
    type: io.kestra.plugin.core.log.Log
    message: {message}
{extra}"""


def test_revisions_diff_and_restore(
    page: webdriver.Chrome, stack: BrowserStack, shot: Shot
) -> None:
    first = REV.format(ns=stack.namespace, message="first", extra="")
    second = REV.format(
        ns=stack.namespace,
        message="second",
        extra="  - id: added\n    type: io.kestra.plugin.core.debug.Return\n    format: new\n",
    )
    assert stack.deploy(first)["revision"] == 1
    assert stack.deploy(second)["revision"] == 2
    open_page(page, f"{stack.url}/ui/#/flows/{stack.namespace}/revised/revisions")
    until(page, lambda d: count(d, "#revisions-table tr[data-revision]") == 2, "two revisions")
    until(page, lambda d: "revision 1 → revision 2" in text(d, "#diff-head"), "1 -> 2")
    assert "null" not in text(page, "#diff-head")
    assert text(page, "#diff-stats").strip() == "· +4 \u22121 lines"  # a minus sign
    until(page, lambda d: count(d, "#revision-diff .cm-changedLine"), "changed lines marked")
    changes = page.execute_script(
        "return document.querySelector('#revision-diff').hwDiff.changes();"
    )
    assert changes == 1, changes  # one hunk: the message changed and a task was added after it
    diff_text = text(page, "#revision-diff")
    assert "message: first" in diff_text
    assert "message: second" in diff_text
    assert "current" in text(page, "#revisions-table tr[data-revision='2']")
    shot("revisions-diff")

    find(page, "#revision-restore").click()  # restore revision 1 (the "from" side)
    page.switch_to.alert.accept()
    until(page, lambda d: count(d, "#revisions-table tr[data-revision]") == 3, "a third revision")
    until(page, lambda d: "revision 2 → revision 3" in text(d, "#diff-head"), "2 -> 3")
    with httpx.Client(base_url=stack.url) as c:
        current = c.get(f"/api/v1/flows/{stack.namespace}/revised").json()
    assert (current["revision"], current["source"]) == (3, first)
    shot("revisions-restored")

    # The editor tab shows the current source.
    find(page, "#flow-tabs a[data-tab='editor']").click()
    wait_editor(page)
    until(page, lambda d: editor_text(d) == first, "the editor holds revision 3")
    until(page, lambda d: text(d, "#flow-revision").strip() == "revision 3", "revision shown")
