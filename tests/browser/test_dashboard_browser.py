"""The dashboard in headless Chromium against a real stack: every page, a flow written,
validated, deployed and run from the browser, its execution watched to the end live (no
reload), the actions, the trigger toggle, the system page and the token prompt.
"""

from __future__ import annotations

import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By

from tests.browser.helpers import (
    Shot,
    attr,
    click,
    count,
    find,
    flow_yaml,
    open_page,
    state_of,
    still_same_page,
    text,
    timeline,
    type_yaml,
    until,
)
from tests.browser.stack import TOKEN, BrowserStack

pytestmark = [
    pytest.mark.browser,
    pytest.mark.kafka,
    pytest.mark.postgres,
    pytest.mark.timeout(300),
]

RETURN_TASK = "  - id: r\n    type: io.kestra.plugin.core.debug.Return\n    format: ok\n"
PAUSE_TASKS = (
    "  - id: p\n    type: io.kestra.plugin.core.flow.Pause\n"
    "  - id: after\n    type: io.kestra.plugin.core.log.Log\n    message: resumed\n"
)
FAIL_TASK = (
    "  - id: boom\n    type: io.kestra.plugin.core.execution.Fail\n"
    "    errorMessage: planned failure\n"
)
SLEEP_TASK = "  - id: nap\n    type: io.kestra.plugin.core.flow.Sleep\n    duration: PT60S\n"
YEARLY_TRIGGER = (
    "triggers:\n  - id: yearly\n    type: io.kestra.plugin.core.trigger.Schedule\n"
    '    cron: "0 0 1 1 *"\n'
)
ENDED = ("SUCCESS", "FAILED", "KILLED", "WARNING")


LIVE_FLOW = """\
id: {id}
namespace: {ns}
description: written in the browser test
tasks:
  - id: hello
    type: io.kestra.plugin.core.log.Log
    message: "hello from the browser"
  - id: wait
    type: io.kestra.plugin.core.flow.Sleep
    duration: PT2S
  - id: branches
    type: io.kestra.plugin.core.flow.Parallel
    tasks:
      - id: left
        type: io.kestra.plugin.core.debug.Return
        format: "left"
      - id: right
        type: io.kestra.plugin.core.debug.Return
        format: "right"
  - id: check
    type: io.kestra.plugin.core.flow.If
    condition: "{{{{ true }}}}"
    then:
      - id: yes_branch
        type: io.kestra.plugin.core.log.Log
        message: "then"
    else:
      - id: no_branch
        type: io.kestra.plugin.core.log.Log
        message: "else"
  - id: graph
    type: io.kestra.plugin.core.flow.Dag
    tasks:
      - task:
          id: first
          type: io.kestra.plugin.core.debug.Return
          format: "1"
      - task:
          id: second
          type: io.kestra.plugin.core.debug.Return
          format: "2"
        dependsOn: [first]
outputs:
  - id: result
    type: STRING
    value: "{{{{ outputs.left.value }}}}"
"""

BROKEN_FLOW = """\
id: broken
namespace: {ns}
tasks:
  - id: hello
    type: io.kestra.plugin.core.log.Log
  - id: nope
    type: io.kestra.plugin.core.log.Lgo
    message: hi
"""


def test_flow_editor_validates_draws_and_deploys(
    page: webdriver.Chrome, stack: BrowserStack, shot: Shot
) -> None:
    open_page(page, f"{stack.url}/ui/#/flows/new")
    type_yaml(page, BROKEN_FLOW.format(ns=stack.namespace))
    until(page, lambda d: d.find_elements(By.CSS_SELECTOR, "#flow-problems li"), "problems")
    problems = [li.text for li in page.find_elements(By.CSS_SELECTOR, "#flow-problems li")]
    assert any("line 7, col" in p and "Lgo" in p for p in problems), problems
    assert "problem" in find(page, "#flow-status").text
    until(page, lambda d: count(d, ".cm-lint-marker-error"), "a problem marked in the gutter")
    shot("flow-editor-invalid")

    type_yaml(page, LIVE_FLOW.format(id="drawn", ns=stack.namespace))
    until(page, lambda d: attr(d, "#flow-status", "class") == "valid", "valid")
    svg = find(page, "#topology-svg")
    drawn = {g.get_attribute("data-task-id") for g in svg.find_elements(By.CSS_SELECTOR, "g.node")}
    tree = {"hello", "branches", "left", "right", "check", "yes_branch", "no_branch"}
    assert tree | {"graph", "first", "second"} <= drawn
    parallel = svg.find_element(By.CSS_SELECTOR, "g.node[data-task-id='branches']")
    assert "layout-parallel" in str(parallel.get_attribute("class"))
    assert len(svg.find_elements(By.CSS_SELECTOR, "path.edge")) >= 8
    shot("flow-editor-topology")

    find(page, "#flow-save").click()
    here = f"#/flows/{stack.namespace}/drawn"
    until(page, lambda d: d.current_url.endswith(here), "navigate to the flow")
    until(page, lambda d: "revision 1" in d.find_element(By.ID, "flow-revision").text, "revision")
    page.get(f"{stack.url}/ui/#/flows")
    listed = f"tr[data-flow='{stack.namespace}/drawn']"
    until(page, lambda d: count(d, listed), "flow listed")
    shot("flows-list")


def test_run_a_flow_and_watch_it_finish_live(
    page: webdriver.Chrome, stack: BrowserStack, shot: Shot
) -> None:
    stack.deploy(LIVE_FLOW.format(id="live", ns=stack.namespace))
    open_page(page, f"{stack.url}/ui/#/flows/{stack.namespace}/live")
    until(page, lambda d: attr(d, "#flow-status", "class") == "valid", "loaded")
    find(page, "#flow-execute").click()
    until(page, lambda d: count(d, "#execute-dialog[open] #no-inputs"), "the execute dialog")
    find(page, "#execute-submit").click()
    until(page, lambda d: "#/executions/" in d.current_url, "navigate to the execution")
    seen: list[str] = []

    def ended(d: webdriver.Chrome) -> bool:
        state = state_of(d)
        if not seen or seen[-1] != state:
            seen.append(state)
        if state == "RUNNING" and count(d, "#gantt .row") and "running" not in taken:
            taken.add("running")
            shot("execution-running")
        return state in ENDED

    taken: set[str] = set()
    until(page, ended, "the execution ends")
    assert seen[-1] == "SUCCESS", seen
    assert "RUNNING" in seen[:-1], f"the page never showed the running execution: {seen}"
    assert still_same_page(page), "the page reloaded"
    until(page, lambda d: len(timeline(d)) >= 10, "timeline rows")
    states = timeline(page)
    assert states["hello"] == "SUCCESS", states
    assert states["second"] == "SUCCESS", states
    assert "no_branch" not in states  # the If took `then`
    until(page, lambda d: "hello from the browser" in text(d, "#logs"), "live logs")
    find(page, "#tab-outputs").click()
    until(
        page, lambda d: text(d, "#exec-outputs-table tr[data-key='result'] td") == "left", "outputs"
    )
    find(page, "#tab-logs").click()
    assert not find(page, "#btn-replay").get_attribute("disabled")
    assert find(page, "#btn-kill").get_attribute("disabled") is not None
    until(page, lambda d: click(d, "#gantt .row[data-task-id='left']"), "click a timeline row")
    out = "#taskrun-outputs tr[data-key='value'] td"
    until(page, lambda d: text(d, out) == "left", "task run outputs")
    shot("execution-success")


def test_executions_list_updates_live_with_counts(
    page: webdriver.Chrome, stack: BrowserStack, shot: Shot
) -> None:
    ns = f"{stack.namespace}.list"
    stack.deploy(flow_yaml("quick", ns, RETURN_TASK))
    open_page(page, f"{stack.url}/ui/#/executions?namespace={ns}")
    until(page, lambda d: "No executions match" in text(d, "#executions-table"), "empty list")
    ids = []
    with stack.client() as c:
        for _ in range(3):
            r = c.post(f"/api/v1/executions/{ns}/quick", json={})
            assert r.status_code == 200, r.text
            ids.append(r.json()["id"])

    def all_success(d: webdriver.Chrome) -> bool:
        chip = d.find_elements(By.CSS_SELECTOR, "#exec-counts .chip[data-state='SUCCESS'] .n")
        return bool(chip) and chip[0].text == "3"

    until(page, all_success, "3 SUCCESS in the counts")
    rows = page.find_elements(By.CSS_SELECTOR, "#executions-table tbody tr[data-execution]")
    assert sorted(r.get_attribute("data-execution") for r in rows) == sorted(ids)
    assert still_same_page(page)
    shot("executions-list")
    # Filtering by a state nobody is in empties the list (and shows in the URL).
    chip = "#exec-counts .chip[data-state='SUCCESS']"
    until(page, lambda d: click(d, chip), "click the SUCCESS count")
    until(page, lambda d: "state=SUCCESS" in d.current_url, "filter in the URL")
    until(page, lambda d: count(d, "tr[data-execution]") == 3, "filtered")


def test_resume_replay_and_kill_buttons(
    page: webdriver.Chrome, stack: BrowserStack, shot: Shot
) -> None:
    ns = stack.namespace
    stack.deploy(flow_yaml("paused", ns, PAUSE_TASKS))
    stack.deploy(flow_yaml("failing", ns, FAIL_TASK))
    stack.deploy(flow_yaml("slow", ns, SLEEP_TASK))

    open_page(page, f"{stack.url}/ui/#/executions/{stack.start('paused')}")
    until(page, lambda d: state_of(d) == "PAUSED", "PAUSED")
    until(page, lambda d: d.find_element(By.ID, "btn-resume").is_enabled(), "resume enabled")
    page.find_element(By.ID, "btn-resume").click()
    until(page, lambda d: state_of(d) == "SUCCESS", "resumed to SUCCESS")

    failed = stack.start("failing")
    open_page(page, f"{stack.url}/ui/#/executions/{failed}")
    until(page, lambda d: state_of(d) == "FAILED", "FAILED")
    assert page.find_element(By.ID, "btn-restart").is_enabled()
    until(page, lambda d: "planned failure" in text(d, "#logs"), "error logged")
    shot("execution-failed")
    page.find_element(By.ID, "btn-replay").click()
    until(page, lambda d: failed not in d.current_url, "replay page")
    assert "#/executions/" in page.current_url
    until(page, lambda d: state_of(d) == "FAILED", "the replay fails again")
    assert failed in find(page, "#exec-meta").text  # "replay of <original>"

    open_page(page, f"{stack.url}/ui/#/executions/{stack.start('slow')}")
    until(page, lambda d: state_of(d) == "RUNNING", "RUNNING")
    page.find_element(By.ID, "btn-kill").click()
    page.switch_to.alert.accept()
    until(page, lambda d: state_of(d) == "KILLED", "KILLED")
    shot("execution-killed")


def test_trigger_toggle_goes_through_the_bus(
    page: webdriver.Chrome, stack: BrowserStack, shot: Shot
) -> None:
    ns = f"{stack.namespace}.trig"
    stack.deploy(flow_yaml("scheduled", ns, RETURN_TASK, YEARLY_TRIGGER))
    open_page(page, f"{stack.url}/ui/#/triggers?namespace={ns}")
    row = f"tr[data-trigger='{ns}/scheduled/yearly']"
    until(page, lambda d: attr(d, row, "data-enabled") == "true", "listed, enabled")
    shot("triggers-enabled")
    until(page, lambda d: click(d, f"{row} button.toggle"), "click the toggle")
    until(page, lambda d: attr(d, row, "data-enabled") == "false", "disabled")
    assert "Enable" in page.find_element(By.CSS_SELECTOR, f"{row} button.toggle").text
    shot("triggers-disabled")


def test_system_page_shows_components_lag_and_throughput(
    page: webdriver.Chrome, stack: BrowserStack, shot: Shot
) -> None:
    stack.deploy(flow_yaml("sys", stack.namespace, RETURN_TASK))
    stack.start("sys")
    open_page(page, f"{stack.url}/ui/#/system")
    for name in ("broker", "database", "projector"):
        css = f"tr[data-component='{name}'] .badge"
        until(page, lambda d, css=css: text(d, css) == "UP", f"{name} UP")
    until(page, lambda d: count(d, "#projectors-table tbody tr td.mono"), "projector row")
    until(page, lambda d: count(d, "#throughput-chart rect"), "throughput bars")
    assert "StartExecution" in find(page, "#commands-sent").text
    shot("system")


def test_token_prompt_when_the_api_needs_credentials(
    page: webdriver.Chrome, stack: BrowserStack, shot: Shot
) -> None:
    open_page(page, f"{stack.secure_url}/ui/#/executions")
    until(page, lambda d: attr(d, "#token-dialog", "open") is not None, "token dialog")
    dialog = page.find_element(By.ID, "token-dialog")
    shot("token-prompt")
    dialog.find_element(By.ID, "token-input").send_keys(TOKEN)
    dialog.find_element(By.ID, "token-save").click()
    # The total is written only once the counts came back: authenticated.
    until(page, lambda d: "in the last" in text(d, "#exec-total"), "list loads")
    assert attr(page, "#token-dialog", "open") is None
    assert not text(page, "#banner")
    assert page.execute_script("return localStorage.getItem('headwater.token')") == TOKEN
    page.execute_script("localStorage.removeItem('headwater.token')")
