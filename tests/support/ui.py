"""`envbuild ui` as a user runs it (its own process on a free loopback port) and a real headless Chromium.

Chromium and its driver are Debian's (`chromium`, `chromium-driver`, installed by scripts/setup.sh); Selenium is
pointed at the driver explicitly, so nothing is downloaded at run time.
"""

from __future__ import annotations

import socket
import subprocess
import time
from contextlib import contextmanager
from pathlib import Path

import httpx

from tests.support.cli import command, environment

CHROMEDRIVER = "/usr/bin/chromedriver"
CHROMIUM = "/usr/bin/chromium"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def ui_server(home: Path, *args: str, token: str | None = None, host: str = "127.0.0.1"):
    """`envbuild ui --cache-dir HOME --host HOST --port P ARGS` running; yields its loopback base URL."""
    port = free_port()
    process = subprocess.Popen(command("ui", "--cache-dir", str(home), "--host", host, "--port", str(port), *args),
                               env=environment(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        for _ in range(200):
            if process.poll() is not None:
                raise AssertionError(f"envbuild ui exited {process.returncode}:\n{process.stdout.read()}")
            try:
                if httpx.get(f"{base}/api/environments", headers=headers, timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        else:
            raise AssertionError("envbuild ui did not answer within 20 s")
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextmanager
def chromium(window: str = "1280,900"):
    """A headless Chromium driven by Selenium."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     f"--window-size={window}"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.implicitly_wait(0)
    try:
        yield driver
    finally:
        driver.quit()


def wait_for(driver, css: str, contains: str = "", timeout: float = 120.0):
    """The element `css` once its text contains `contains` (the page may fill it in as events arrive)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    locator = (By.CSS_SELECTOR, css)
    wait = WebDriverWait(driver, timeout)
    if contains:
        wait.until(expected_conditions.text_to_be_present_in_element(locator, contains))
    else:
        wait.until(expected_conditions.presence_of_element_located(locator))
    return driver.find_element(*locator)
