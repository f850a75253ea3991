"""A real headless browser for the status page's tests: Debian's Chromium driven by Selenium,
with Debian's chromedriver named explicitly so Selenium Manager never downloads a driver or
a browser (``invoke lab-setup`` installs both packages). As root, Chromium needs
``--no-sandbox``."""
from __future__ import annotations

import os
import time
from typing import Any, Callable, Iterator

import pytest

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"


def chromium() -> Any:
    """A new headless Chromium session (the caller quits it)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    for path in (CHROMIUM, CHROMEDRIVER):
        assert os.access(path, os.X_OK), f"{path} is missing: run `invoke lab-setup` " \
                                         "(Debian's chromium and chromium-driver)"
    os.environ["SE_OFFLINE"] = "true"  # Selenium Manager, should it run at all: no network
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                     "--disable-gpu", "--window-size=1400,1000"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    driver = chromium()
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


def wait_for(driver: Any, what: str, found: Callable[[Any], Any], timeout: float) -> Any:
    """``found(driver)`` once it is truthy (errors while the page changes count as not yet);
    AssertionError naming ``what`` and showing the page's text at ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = found(driver)
            if value:
                return value
        except Exception:  # an element replaced while read: the page is being redrawn
            pass
        if time.monotonic() > deadline:
            text = driver.find_element("tag name", "body").text
            raise AssertionError(f"{what}: not within {timeout:.0f} s; the page says:\n{text}")
        time.sleep(0.25)


def host_health(driver: Any) -> dict[str, str]:
    """host → health as the page's Servers table shows them."""
    rows = driver.find_elements("css selector", "#hosts tr[data-host]")
    return {row.get_attribute("data-host"): row.find_element("css selector", ".health").text
            for row in rows}


def console_errors(driver: Any) -> list[str]:
    """The browser console's errors since the last call (CSP violations show here)."""
    return [entry["message"] for entry in driver.get_log("browser")
            if entry["level"] == "SEVERE"]
