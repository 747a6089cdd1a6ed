"""A real browser for the tests: headless Chromium from Debian, driven through Debian's
chromedriver by Selenium, and the directory its screenshots are kept in."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.chrome.service import Service

ROOT = Path(__file__).resolve().parents[2]


def artifacts(name: str) -> Path:
    """PORTICO_ARTIFACTS_DIR (default .artifacts/) / NAME, emptied for this run."""
    base = Path(os.environ.get("PORTICO_ARTIFACTS_DIR", ROOT / ".artifacts"))
    out = base / name
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    return out


@contextmanager
def chromium(profile: Path) -> Iterator[webdriver.Chrome]:
    """Headless Chromium with its profile in PROFILE; it accepts the tests' self-signed
    certificates (made for 127.0.0.1, trusted by nobody else)."""
    binary, driver = shutil.which("chromium"), shutil.which("chromedriver")
    # Never a skip: .ci/install-system-packages installs both.
    assert binary and driver, "install Debian's chromium and chromium-driver"
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--window-size=1000,800",
    ):
        options.add_argument(arg)
    options.add_argument(f"--user-data-dir={profile}")
    options.accept_insecure_certs = True
    chrome = webdriver.Chrome(options=options, service=Service(driver))
    chrome.set_page_load_timeout(60)
    try:
        yield chrome
    finally:
        chrome.quit()
