"""The files AnsibleCLI puts in its working directory: the result-collecting callback and the
``kestra`` module (Headwater's own code, speaking the payload of Kestra's ``kestra_logger``)."""

from __future__ import annotations

# callback_plugins/kestra_logger.py: an aggregate callback that collects every task's per-host
# results and prints them, at the end of the playbook, as one ``::{"outputs": ...}::`` line.
CALLBACK = r'''# Written by Headwater's AnsibleCLI task (executors/ansible_files.py).
from __future__ import annotations

import json
import os
from datetime import datetime, timezone

from ansible import constants as C
from ansible.plugins.callback import CallbackBase

DOCUMENTATION = """
    name: kestra_logger
    type: aggregate
    short_description: collects the per-host results of every task for the task's outputs
    description:
      - Collects the plays, tasks and per-host results of the playbook run.
      - KESTRA_OUTPUTS_MODE=explicit keeps only values declared with the kestra module.
"""

OUTPUT_ACTIONS = frozenset({"kestra", "ansible.legacy.kestra"})


def _iso(moment):
    return moment.isoformat().replace("+00:00", "Z")


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "kestra_logger"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self):
        super().__init__()
        mode = os.environ.get("KESTRA_OUTPUTS_MODE", "all")
        self._explicit_mode = mode.strip().lower() == "explicit"
        self._raw = []
        self._declared = {}
        self._playbooks = []
        self._playbook = None
        self._play = None
        self._task = None
        self._started = None
        self._unnamed = 0
        self._log = None
        path = getattr(C, "DEFAULT_LOG_PATH", None)
        if path not in (None, "", "None"):
            try:
                path = os.path.abspath(os.path.expanduser(str(path)))
                os.makedirs(os.path.dirname(path), exist_ok=True)
                self._log = open(path, "a", encoding="utf-8")
            except OSError:
                self._log = None

    # -- the structure: playbook > plays > tasks > hosts

    def _ensure_playbook(self):
        if self._playbook is None:
            self._playbook = {"plays": []}
            self._playbooks.append(self._playbook)

    def _start_play(self, name):
        self._ensure_playbook()
        self._play = {"name": name or "unnamed_play", "tasks": []}
        self._playbook["plays"].append(self._play)

    def _start_task(self, task):
        self._finish_task()
        if self._play is None:
            self._start_play("implicit_play")
        name = task.get_name().strip()
        if not name:
            action = getattr(task, "action", None)
            if action:
                name = str(action)
            else:
                self._unnamed += 1
                name = "unnamed_task_%d" % self._unnamed
        self._started = datetime.now(timezone.utc)
        self._task = {
            "uid": "%s | %s" % (self._play["name"], name),
            "name": name,
            "startedAt": _iso(self._started),
            "endedAt": None,
            "hosts": [],
        }
        self._play["tasks"].append(self._task)

    def _finish_task(self):
        if self._task is None:
            return
        ended = datetime.now(timezone.utc)
        self._task["endedAt"] = _iso(ended)
        if self._log is not None:
            line = {
                "play": self._play["name"],
                "task": self._task["name"],
                "uid": self._task["uid"],
                "startedAt": self._task["startedAt"],
                "endedAt": self._task["endedAt"],
                "durationMs": int((ended - self._started).total_seconds() * 1000),
                "hosts": self._task["hosts"],
            }
            stamp = ended.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
            try:
                text = json.dumps(line, default=str, separators=(",", ":"))
                self._log.write(stamp + " " + text + "\n")
                self._log.flush()
            except OSError:
                pass
        self._task = None

    def _host_result(self, result, status):
        payload = dict(result._result)
        if getattr(result._task, "action", None) in OUTPUT_ACTIONS and status == "ok":
            declared = payload.get("outputs")
            if isinstance(declared, dict):
                self._declared.update(declared)
            elif "results" in payload:
                self._display.warning(
                    "kestra module was invoked with a loop. Declared outputs were not "
                    "collected. Call the module once with all values instead."
                )
        if not self._explicit_mode:
            self._raw.append(payload)
        if self._task is None:
            self._start_task(result._task)
        if self._explicit_mode:
            shown = {"changed": bool(payload.get("changed", False))}
            if status in ("failed", "unreachable") and payload.get("msg") is not None:
                shown["msg"] = payload.get("msg")
        else:
            shown = payload
        host = result._host.get_name() if result._host else "unknown_host"
        self._task["hosts"].append({"host": host, "status": status, "result": shown})

    # -- Ansible's events

    def v2_playbook_on_start(self, playbook):
        self._ensure_playbook()

    def v2_playbook_on_play_start(self, play):
        self._finish_task()
        self._start_play(play.get_name().strip())

    def v2_playbook_on_task_start(self, task, is_conditional):
        self._start_task(task)

    def v2_playbook_on_handler_task_start(self, task):
        self._start_task(task)

    def v2_runner_on_ok(self, result):
        self._host_result(result, "ok")

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._host_result(result, "failed")

    def v2_runner_on_skipped(self, result):
        self._host_result(result, "skipped")

    def v2_runner_on_unreachable(self, result):
        self._host_result(result, "unreachable")

    def v2_playbook_on_stats(self, stats):
        self._finish_task()
        outputs = self._declared if self._explicit_mode else self._raw
        payload = {"outputs": {"outputs": outputs, "playbooks": self._playbooks}}
        print("::" + json.dumps(payload, default=str) + "::", flush=True)
        if self._log is not None:
            try:
                self._log.close()
            except OSError:
                pass
            self._log = None
'''

# library/kestra.py: a module that only echoes the ``outputs`` it is given, so the callback can
# collect them (outputsMode: EXPLICIT).
KESTRA_MODULE = r'''#!/usr/bin/python
# Written by Headwater's AnsibleCLI task (executors/ansible_files.py).
from __future__ import annotations

from ansible.module_utils.basic import AnsibleModule

DOCUMENTATION = r"""
module: kestra
short_description: Declare values to expose as the task's outputs
options:
  outputs:
    description: A mapping of output names to JSON values.
    type: dict
    required: false
"""


def main():
    module = AnsibleModule(
        argument_spec=dict(outputs=dict(type="dict", required=False)),
        required_one_of=[["outputs"]],
        supports_check_mode=True,
    )
    module.exit_json(changed=False, outputs=module.params["outputs"])


if __name__ == "__main__":
    main()
'''
