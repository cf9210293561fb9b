"""Running a flow from the typed execute form, and reading an execution: errors per attempt,
task run outputs, the log level filter, search and per-attempt scope, and the topology
coloured by state (Parallel children inside their box, a click opens the task run).
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support.select import Select

from tests.browser.helpers import (
    Shot,
    attr,
    click,
    count,
    find,
    open_page,
    state_of,
    text,
    type_yaml,
    until,
)
from tests.browser.stack import BrowserStack

pytestmark = [
    pytest.mark.browser,
    pytest.mark.kafka,
    pytest.mark.postgres,
    pytest.mark.timeout(300),
]

FORM_FLOW = """\
id: form
namespace: {ns}
inputs:
  - id: who
    type: STRING
    description: Who to greet
  - id: count
    type: INT
    defaults: 3
  - id: ratio
    type: FLOAT
    required: false
  - id: loud
    type: BOOLEAN
    defaults: false
  - id: color
    type: SELECT
    values: [red, green, blue]
    defaults: green
  - id: tags
    type: MULTISELECT
    values: [a, b, c]
  - id: day
    type: DATE
  - id: at
    type: DATETIME
    required: false
  - id: when
    type: TIME
    required: false
  - id: payload
    type: JSON
    defaults: '{{"k": 1}}'
  - id: doc
    type: FILE
    required: false
  - id: computed
    type: STRING
    defaults: "{{{{ flow.id }}}}"
tasks:
  - id: greet
    type: io.kestra.plugin.core.debug.Return
    format: "{{{{ inputs.who }}}}"
  - id: uploaded
    type: io.kestra.plugin.core.debug.Return
    format: "{{{{ inputs.doc == null ? 'no file' : read(inputs.doc) }}}}"
"""


def field(driver: webdriver.Chrome, input_id: str, css: str = "") -> Any:
    return driver.find_element(By.CSS_SELECTOR, f".field[data-input='{input_id}'] {css}".strip())


def set_value(driver: webdriver.Chrome, input_id: str, value: str) -> None:
    """Set a date/time field as the browser's picker would (its typed format is the locale's)."""
    el = field(driver, input_id, "input")
    driver.execute_script(
        "arguments[0].value = arguments[1];"
        "arguments[0].dispatchEvent(new Event('input', {bubbles: true}));",
        el,
        value,
    )


def test_execute_form_is_typed_from_the_inputs(
    page: webdriver.Chrome,
    stack: BrowserStack,
    shot: Shot,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    full = FORM_FLOW.format(ns=stack.namespace)
    cut = full.index("  - id: computed")
    stack.deploy(full[:cut] + full[full.index("tasks:") :])  # revision 1: no `computed`
    open_page(page, f"{stack.url}/ui/#/flows/{stack.namespace}/form")
    until(page, lambda d: attr(d, "#flow-status", "class") == "valid", "loaded")
    # Saved and executed at once: the form waits for the revision just deployed.
    type_yaml(page, full)
    until(page, lambda d: find(d, "#flow-dirty").is_displayed(), "unsaved changes shown")
    find(page, "#flow-save").click()
    until(page, lambda d: text(d, "#flow-revision").strip() == "revision 2", "deployed")
    find(page, "#flow-execute").click()
    until(page, lambda d: count(d, "#execute-dialog[open] .field") == 12, "one field per input")
    assert "revision 2" in text(page, "#execute-dialog h3")

    # Required markers only where there is neither a default nor required: false.
    required = {
        f.get_attribute("data-input")
        for f in page.find_elements(By.CSS_SELECTOR, ".field")
        if f.find_elements(By.CSS_SELECTOR, ".required")
    }
    assert required == {"who", "tags", "day"}, required
    assert "Who to greet" in field(page, "who").text
    # Widgets by type, defaults filled in.
    assert field(page, "count", "input").get_attribute("type") == "number"
    assert field(page, "count", "input").get_attribute("value") == "3"
    assert Select(field(page, "loud", "select")).first_selected_option.text == "false"
    color = Select(field(page, "color", "select"))
    assert [o.text for o in color.options][1:] == ["red", "green", "blue"]
    assert color.first_selected_option.text == "green"
    assert len(field(page, "tags").find_elements(By.CSS_SELECTOR, "input[type=checkbox]")) == 3
    types = {i: field(page, i, "input").get_attribute("type") for i in ("day", "at", "when")}
    assert types == {"day": "date", "at": "datetime-local", "when": "time"}
    assert '"k": 1' in field(page, "payload", "textarea").get_attribute("value")
    # Uploading needs the API's multipart execution creation; the inputs endpoint says whether
    # this server has it, and each case is checked as what it is.
    with httpx.Client(base_url=stack.url) as c:
        uploads = c.get(f"/api/v1/dashboard/flows/{stack.namespace}/form/inputs").json()
    upload = field(page, "doc", "input[type=file]")
    if uploads["fileUploads"]:
        assert upload.get_attribute("disabled") is None
    else:
        assert upload.get_attribute("disabled") is not None
        assert "multipart" in field(page, "doc").text
    assert "rendered when the execution starts" in field(page, "computed").text
    shot("execute-form")

    # Invalid JSON is caught here; missing required inputs come back from the API, per field.
    payload = field(page, "payload", "textarea")
    payload.clear()
    payload.send_keys("{bad")
    find(page, "#execute-submit").click()
    until(page, lambda d: "not valid JSON" in field(d, "payload", ".field-error").text, "JSON")
    payload.clear()
    find(page, "#execute-submit").click()
    for missing in ("who", "day"):
        css = f".field.invalid[data-input='{missing}'] .field-error"
        until(page, lambda d, css=css: d.find_element(By.CSS_SELECTOR, css).text, missing)
    assert "#/flows/" in page.current_url
    shot("execute-form-errors")

    field(page, "who", "input").send_keys("Ada")
    field(page, "ratio", "input").send_keys("0.5")
    Select(field(page, "loud", "select")).select_by_visible_text("true")
    Select(field(page, "color", "select")).select_by_visible_text("blue")
    for tag in ("a", "c"):
        field(page, "tags", f"input[data-value='{tag}']").click()
    set_value(page, "day", "2024-01-31")
    set_value(page, "at", "2024-01-31T10:00:00")
    set_value(page, "when", "10:30:00")
    if uploads["fileUploads"]:
        local = tmp_path_factory.mktemp("upload") / "hello.txt"
        local.write_text("uploaded from the browser\n")
        upload.send_keys(str(local))
    expected_at = page.execute_script("return new Date('2024-01-31T10:00:00').toISOString();")
    find(page, "#execute-submit").click()
    until(page, lambda d: "#/executions/" in d.current_url, "navigate to the execution")
    until(page, lambda d: state_of(d) == "SUCCESS", "the execution succeeds")
    execution_id = page.current_url.rsplit("/", 1)[-1]
    with httpx.Client(base_url=stack.url) as c:
        done = c.get(f"/api/v1/executions/{execution_id}").json()
    inputs = done["inputs"]
    outputs = {r["taskId"]: r["outputs"] for r in done["taskRunList"]}
    if uploads["fileUploads"]:
        doc = inputs.pop("doc")
        assert doc.startswith("kestra:///"), doc
        assert doc.endswith("/inputs/doc/hello.txt"), doc
        assert outputs["uploaded"] == {"value": "uploaded from the browser\n"}
        inputs["doc"] = None
    else:
        assert outputs["uploaded"] == {"value": "no file"}
    assert inputs == {
        "who": "Ada",
        "count": 3,
        "ratio": 0.5,
        "loud": True,
        "color": "blue",
        "tags": ["a", "c"],
        "day": "2024-01-31",
        "at": expected_at,
        "when": "10:30:00",
        "payload": {"k": 1},
        "doc": None,  # an optional input left empty is null, as in Kestra
        "computed": "form",
    }
    find(page, "#tab-inputs").click()
    until(page, lambda d: text(d, "#exec-inputs-table tr[data-key='who'] td") == "Ada", "inputs")
    shot("execution-inputs")


INSPECT_FLOW = """\
id: inspect
namespace: {ns}
tasks:
  - id: quiet
    type: io.kestra.plugin.core.log.Log
    level: DEBUG
    message: a quiet detail
  - id: warn
    type: io.kestra.plugin.core.log.Log
    level: WARN
    message: a warning here
  - id: both
    type: io.kestra.plugin.core.flow.Parallel
    tasks:
      - id: left
        type: io.kestra.plugin.core.debug.Return
        format: L
      - id: right
        type: io.kestra.plugin.core.debug.Return
        format: R
  - id: flaky
    type: io.kestra.plugin.core.execution.Fail
    errorMessage: planned failure
    retry:
      type: constant
      interval: PT0.2S
      maxAttempt: 2
errors:
  - id: cleanup
    type: io.kestra.plugin.core.log.Log
    level: ERROR
    message: cleaning up after the failure
"""


def visible_lines(driver: webdriver.Chrome) -> list[dict[str, str]]:
    script = (
        "return [...document.querySelectorAll('#logs .line')].filter((l) => !l.hidden)"
        ".map((l) => ({level: l.dataset.level, attempt: l.dataset.attempt,"
        " text: l.querySelector('.msg').textContent,"
        " marked: l.querySelectorAll('mark').length}));"
    )
    return list(driver.execute_script(script))


def test_execution_page_shows_errors_outputs_logs_and_topology(
    page: webdriver.Chrome, stack: BrowserStack, shot: Shot
) -> None:
    stack.deploy(INSPECT_FLOW.format(ns=stack.namespace))
    open_page(page, f"{stack.url}/ui/#/executions/{stack.start('inspect')}")
    until(page, lambda d: state_of(d) == "FAILED", "FAILED")

    # Every failed attempt, with its error, above the timeline. (The page re-renders as the
    # follow stream ends: each read below is one script call, or retried by `until`.)
    until(page, lambda d: count(d, "#exec-errors li[data-task-id='flaky']") == 2, "two attempts")
    errors = until(page, lambda d: text(d, "#exec-errors"), "the errors panel")
    assert errors.count("planned failure") == 2, errors
    assert "attempt 1 of 2" in errors
    assert "attempt 2 of 2" in errors
    until(page, lambda d: click(d, "#exec-errors li[data-attempt='2']"), "open the task run")
    attempts = (
        "return [...document.querySelectorAll('#taskrun-attempts tbody tr')]"
        ".map((r) => [r.dataset.state, r.querySelector('td.error-cell').textContent]);"
    )
    until(page, lambda d: len(d.execute_script(attempts)) == 2, "the attempts table")
    assert page.execute_script(attempts) == [["FAILED", "planned failure"]] * 2
    shot("execution-errors")

    # Logs: INFO and above by default, then each level, a search, one attempt.
    until(page, lambda d: "cleaning up" in text(d, "#logs"), "the error handler's line")
    shown = [line["text"] for line in visible_lines(page)]
    assert "a warning here" in shown, shown
    assert "a quiet detail" not in shown, shown
    Select(find(page, "#log-level")).select_by_value("DEBUG")
    assert "a quiet detail" in [line["text"] for line in visible_lines(page)]
    Select(find(page, "#log-level")).select_by_value("ERROR")
    levels = {line["level"] for line in visible_lines(page)}
    assert levels == {"ERROR"}, levels
    assert "of" in text(page, "#log-count")  # "n of m lines"
    Select(find(page, "#log-level")).select_by_value("TRACE")
    find(page, "#log-search").send_keys("WARNING")
    until(page, lambda d: [x["text"] for x in visible_lines(d)] == ["a warning here"], "search")
    assert visible_lines(page)[0]["marked"] == 1
    shot("execution-logs-search")
    find(page, "#log-search").clear()
    find(page, "#log-search").send_keys(" ")  # an input event with an empty (trimmed) search
    until(page, lambda d: len(visible_lines(d)) > 3, "search cleared")
    until(page, lambda d: click(d, "#taskrun-attempts button[data-attempt-logs='2']"), "logs")
    until(page, lambda d: "attempt 2" in text(d, "#log-scope"), "scoped to attempt 2")
    scoped = visible_lines(page)
    assert scoped
    assert all(line["attempt"] == "2" for line in scoped), scoped
    assert any("planned failure" in line["text"] for line in scoped), scoped
    find(page, "#log-scope-clear").click()
    until(page, lambda d: not find(d, "#log-scope").is_displayed(), "scope cleared")

    # Topology: states on the boxes, the Parallel's children inside it, a click opens a run.
    find(page, "#tab-topology").click()
    node = "#exec-topology-canvas g.node[data-task-id='{}']"
    states = (
        "return Object.fromEntries([...document.querySelectorAll("
        "'#exec-topology-canvas g.node[data-task-id]')].map((g) => [g.dataset.taskId,"
        " g.dataset.state]));"
    )
    until(page, lambda d: d.execute_script(states).get("flaky") == "FAILED", "coloured")
    assert page.execute_script(states) == {
        "quiet": "SUCCESS",
        "warn": "SUCCESS",
        "both": "SUCCESS",
        "left": "SUCCESS",
        "right": "SUCCESS",
        "flaky": "FAILED",
        "cleanup": "SUCCESS",
    }
    contained = page.execute_script(
        "const box = (id) => document.querySelector("
        "`#exec-topology-canvas g.node[data-task-id='${id}'] rect`).getBoundingClientRect();"
        "const p = box('both');"
        "return ['left', 'right'].every((id) => { const c = box(id);"
        " return c.width > 0 && c.left >= p.left && c.right <= p.right"
        " && c.top >= p.top && c.bottom <= p.bottom; });"
    )
    assert contained
    shot("execution-topology")
    until(page, lambda d: click(d, node.format("left")), "click a box")
    out = "#taskrun-outputs tr[data-key='value'] td"
    until(page, lambda d: text(d, out) == "L", "the task run's outputs")
