"""Headless Debian Chromium for the browser tests, driven by selenium through chromedriver.

The packages are installed on first use (``apt-get install chromium chromium-driver``, as
root, once): CI and a fresh machine start from nothing. The launch flags keep Chromium off the
network (this machine has none) and out of any profile but a fresh temporary one.
"""

from __future__ import annotations

import os
import pathlib
import shutil
import subprocess
import tempfile

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
PACKAGES = ("chromium", "chromium-driver")
# apt-get downloads ~100 MB on a fresh machine; an update of the package lists comes first
# when the install fails because they are stale.
APT_TIMEOUT_S = 900
WINDOW = "1440,1000"
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    f"--window-size={WINDOW}",
)


def _apt(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    return subprocess.run(
        ["apt-get", *args], env=env, capture_output=True, text=True, timeout=APT_TIMEOUT_S
    )


def ensure_packages(packages: tuple[str, ...], *paths: str) -> None:
    """Install Debian packages if one of ``paths`` is missing; fail with what to do."""
    if all(pathlib.Path(p).exists() for p in paths):
        return
    how = f"apt-get install -y --no-install-recommends {' '.join(packages)}"
    if shutil.which("apt-get") is None or os.geteuid() != 0:
        pytest.fail(f"{packages[0]} is not installed and this is not root on Debian: run `{how}`")
    result = _apt("install", "-y", "--no-install-recommends", *packages)
    if result.returncode != 0:
        _apt("update")
        result = _apt("install", "-y", "--no-install-recommends", *packages)
    if result.returncode != 0 or not all(pathlib.Path(p).exists() for p in paths):
        pytest.fail(f"installing {packages[0]} failed (`{how}`):\n{result.stderr[-2000:]}")


def ensure_installed() -> None:
    """Install Debian's chromium and chromium-driver if missing; fail with what to do."""
    ensure_packages(PACKAGES, CHROMIUM, CHROMEDRIVER)


def make_driver(profile: pathlib.Path) -> webdriver.Chrome:
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile}")
    # Read the console after each test: a JS error on a page is a failed test.
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))


def new_profile() -> tempfile.TemporaryDirectory[str]:
    return tempfile.TemporaryDirectory(prefix="hw-chromium-")
