"""AnsibleCLI running real playbooks against localhost with the local connection.

ansible comes from the cached tool virtualenv (the ``ansible`` package: ~25 s the first time).
"""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path
from typing import Any

import pytest

from executors.plugins.ansible import ANSIBLE_TOOL, AnsibleCLI
from tests.integration.cli_support import run_plugin

pytestmark = pytest.mark.cli_tools(ANSIBLE_TOOL)


INVENTORY = "[local]\nlocalhost ansible_connection=local ansible_python_interpreter=python3\n"
PLAYBOOK = """- name: Hello
  hosts: local
  gather_facts: false
  tasks:
    - name: Say hi
      ansible.builtin.debug:
        msg: "hi {{ who }}"
    - name: Write a file
      ansible.builtin.copy:
        dest: "{{ playbook_dir }}/report.txt"
        content: "written by ansible\\n"
    - name: Skipped one
      ansible.builtin.command: "false"
      when: false
"""


def workdir(tmp_path: Path, **files: str) -> Path:
    """A working directory holding the playbooks (Jinja in them is Ansible's, not rendered)."""
    wd = tmp_path / "wd"
    wd.mkdir(exist_ok=True)
    for name, text in files.items():
        (wd / name.replace("__", ".")).write_text(text)
    return wd


def home_role_exists() -> bool:
    return Path(os.path.expanduser("~/.ansible/roles/hw_role")).exists()


FAILING = """- hosts: local
  gather_facts: false
  tasks:
    - name: Break
      ansible.builtin.command: ls /no/such/dir
"""


def ansible(**props: Any) -> dict[str, Any]:
    return {"id": "ansible", "type": "io.kestra.plugin.ansible.cli.AnsibleCLI", **props}


async def test_a_playbook_on_localhost_gives_structured_outputs_and_files(
    tmp_path: Path,
) -> None:
    wd = workdir(tmp_path, playbook__yml=PLAYBOOK)
    task = ansible(
        inputFiles={"inventory.ini": INVENTORY},
        commands=[
            "ansible-playbook -i inventory.ini playbook.yml -e who=alice",
            "ansible-playbook -i inventory.ini playbook.yml -e who=bob",
        ],
        outputFiles=["report.txt"],
        outputLogFile=True,
        containerImage="cytopia/ansible:latest-tools",
    )
    run = await run_plugin(AnsibleCLI, task, tmp_path, working_dir=wd)

    assert run.state == "SUCCESS", run.text()
    assert run.text("ERROR") == ""  # nothing on stderr
    outputs = run.outcome.outputs
    assert outputs["exitCode"] == 0
    playbooks = outputs["vars"]["playbooks"]
    assert outputs["playbooks"] == playbooks
    assert len(playbooks) == 2  # one per command, merged
    play = playbooks[0]["plays"][0]
    assert play["name"] == "Hello"
    assert [t["name"] for t in play["tasks"]] == ["Say hi", "Write a file", "Skipped one"]
    hello = play["tasks"][0]
    assert hello["uid"] == "Hello | Say hi"
    assert hello["startedAt"].endswith("Z")
    assert hello["endedAt"].endswith("Z")
    assert hello["hosts"][0]["host"] == "localhost"
    assert hello["hosts"][0]["status"] == "ok"
    assert hello["hosts"][0]["result"]["msg"] == "hi alice"
    assert playbooks[1]["plays"][0]["tasks"][0]["hosts"][0]["result"]["msg"] == "hi bob"
    assert play["tasks"][2]["hosts"][0]["status"] == "skipped"
    # ALL mode: every per-host result, in order, over both commands.
    raw = outputs["vars"]["outputs"]
    assert [r.get("msg") for r in raw if "msg" in r][:1] == ["hi alice"]
    assert len(raw) == 6
    # The per-task lines Kestra attaches to dynamic task runs.
    assert 'Hello | Say hi: [localhost] ok => {"msg":"hi alice"' in run.text("INFO")
    files = outputs["outputFiles"]
    assert run.read(files["report.txt"]) == b"written by ansible\n"
    log = run.read(files["log"]).decode()
    assert log.count('"uid":"Hello | Say hi"') == 2  # both commands' logs, concatenated


async def test_explicit_outputs_and_a_failing_task(tmp_path: Path) -> None:
    playbook = """- hosts: local
  gather_facts: false
  tasks:
    - name: Secret work
      ansible.builtin.command: echo s3cr3t-output
      register: work
    - name: Declare
      kestra:
        outputs:
          words: "{{ work.stdout.split('-') | length }}"
          done: true
"""
    wd = workdir(tmp_path, play__yml=playbook, fail__yml=FAILING, ok__yml=PLAYBOOK)
    task = ansible(
        inputFiles={"inventory.ini": INVENTORY},
        commands=["ansible-playbook -i inventory.ini play.yml"],
        outputsMode="EXPLICIT",
    )
    run = await run_plugin(AnsibleCLI, task, tmp_path, working_dir=wd)
    assert run.state == "SUCCESS", run.text()
    assert run.outcome.outputs["vars"]["outputs"] == {"words": 2, "done": True}
    hosts = run.outcome.outputs["vars"]["playbooks"][0]["plays"][0]["tasks"][0]["hosts"]
    assert hosts == [{"host": "localhost", "status": "ok", "result": {"changed": True}}]
    assert "s3cr3t-output" not in run.text()

    task = ansible(
        inputFiles={"inventory.ini": INVENTORY},
        commands=[
            "ansible-playbook -i inventory.ini fail.yml",
            "ansible-playbook -i inventory.ini ok.yml -e who=nobody",
        ],
    )
    run = await run_plugin(AnsibleCLI, task, tmp_path, working_dir=wd)
    assert run.state == "FAILED"
    assert run.outcome.error == "Command failed with exit code 2"
    assert run.outcome.outputs["exitCode"] == 2
    assert "Break: [localhost] failed => " in run.text("ERROR")
    assert "No such file or directory" in run.text("ERROR")
    assert "hi nobody" not in run.text()  # the second command did not run
    assert len(run.outcome.outputs["vars"]["playbooks"]) == 1


PLAYBOOK_WITH_ROLE = """- hosts: local
  gather_facts: false
  roles: [hw_role]
  tasks:
    - name: Which module
      ansible.builtin.command: python3 -c "import text_unidecode; print(text_unidecode.__file__)"
"""


def _role_tarball(path: Path) -> None:
    """A Galaxy role archive: hw_role/tasks/main.yml and its meta."""
    files = {
        "hw_role/tasks/main.yml": "- ansible.builtin.debug:\n    msg: from the role\n",
        "hw_role/meta/main.yml": "galaxy_info:\n  author: t\n  description: t\n  license: MIT\n"
        "  min_ansible_version: '2.9'\n  platforms: []\ndependencies: []\n",
    }
    with tarfile.open(path, "w:gz") as archive:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))


async def test_requirements_are_installed_for_the_run_only(tmp_path: Path) -> None:
    wd = workdir(tmp_path, play__yml=PLAYBOOK_WITH_ROLE)
    _role_tarball(tmp_path / "hw_role.tar.gz")
    (wd / "requirements.yml").write_text(
        f"roles:\n  - name: hw_role\n    src: file://{tmp_path / 'hw_role.tar.gz'}\n"
    )
    (wd / "requirements.txt").write_text("text-unidecode==1.3\n")
    task = ansible(
        inputFiles={"inventory.ini": INVENTORY},
        beforeCommands=["echo preparing"],
        commands=["ansible-playbook -i inventory.ini play.yml"],
    )
    run = await run_plugin(AnsibleCLI, task, tmp_path, working_dir=wd)
    assert run.state == "SUCCESS", run.text()
    tasks = run.outcome.outputs["vars"]["playbooks"][0]["plays"][0]["tasks"]
    assert tasks[0]["hosts"][0]["result"]["msg"] == "from the role"
    module = tasks[1]["hosts"][0]["result"]["stdout"]
    assert module.startswith(str(wd / ".headwater" / "python"))
    assert (wd / ".headwater" / "galaxy" / "roles" / "hw_role").is_dir()
    assert not home_role_exists()
    assert "preparing" in run.text("INFO")


async def test_an_ansible_cfg_from_input_files_wins(tmp_path: Path) -> None:
    task = ansible(
        inputFiles={"ansible.cfg": "[defaults]\nstdout_callback = minimal\n"},
        commands=["ansible-config dump --only-changed | grep -i callback"],
    )
    run = await run_plugin(AnsibleCLI, task, tmp_path)
    assert run.state == "SUCCESS", run.text()
    assert "Found an existing ansible.cfg file" in run.text("WARN")
    assert "minimal" in run.text("INFO")

    bad = ansible(commands=["true"], outputsMode="SOME")
    run = await run_plugin(AnsibleCLI, bad, tmp_path)
    assert run.state == "FAILED"
    assert run.outcome.error == "property 'outputsMode': 'SOME' is not one of ALL, EXPLICIT"
