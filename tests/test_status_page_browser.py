"""The status page in headless Chromium, served by a real webhook on 127.0.0.1 whose gather is
the real ``status`` plan over canned host outputs: the page lays the document out, Mermaid
draws the diagram (the pinned mermaid.min.js from the cache), names that are markup stay
text, a failed gather shows, and without mermaid.min.js the diagram's text is shown. On the
lab, test_status_lab.py loads the page of the webhook install_webhook put on main."""
from __future__ import annotations

import copy
import threading
from pathlib import Path
from typing import Any, Iterator

import pytest

from puppetops import mermaid_js
from puppetops.errors import UsageError
from puppetops.testing.webhook import RecordingDeploy
from puppetops.webhook.config import WebhookConfig
from puppetops.webhook.server import WebhookServer

from browser import browser, console_errors, host_health, wait_for  # noqa: F401 (fixture)
from test_status import C2, MAIN
from test_status_page import HEALTHY, Gathers, compiler_down

pytestmark = pytest.mark.slow
HOSTILE = '<img src=x id=injected onerror="document.title=1">'


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Any]:
    """``served(gather, mermaid=True)``: the page's URL on a webhook refreshing every 2 s."""
    servers: list[tuple[WebhookServer, threading.Thread]] = []

    def start(gather: Gathers, mermaid: bool = True) -> tuple[str, WebhookServer]:
        config = WebhookConfig(host="127.0.0.1", port=0, secret="s" * 32, status_page=True,
                               status_refresh=2, database=str(tmp_path / f"{len(servers)}.db"),
                               mermaid_js=str(mermaid_js.ensure() if mermaid
                                              else tmp_path / "absent.js"))
        server = WebhookServer(config, RecordingDeploy(), gather)
        thread = threading.Thread(target=server.serve, daemon=True)
        thread.start()
        servers.append((server, thread))
        return f"http://127.0.0.1:{server.port}/", server

    yield start
    for server, thread in servers:
        server.stop()
        thread.join(30)


def test_the_page_shows_every_host_draws_the_diagram_and_follows_a_change(browser, served):
    url, _ = served(Gathers(HEALTHY, compiler_down()))
    console_errors(browser)
    browser.get(url)
    shown = wait_for(browser, "every host with its health",
                     lambda d: host_health(d) if len(host_health(d)) == len(HEALTHY["hosts"])
                     else None, 30)
    assert shown == {name: "ok" for name in HEALTHY["hosts"]}
    svg = wait_for(browser, "the diagram drawn as SVG",  # read in the wait: a poll may redraw it
                   lambda d: d.find_element("css selector", "#diagram svg").text, 60)
    assert "compiler2.example.com" in svg and "PuppetDB" not in svg
    assert browser.find_element("id", "diagram-text").get_attribute("hidden")
    assert browser.find_element("id", "refresh").text == "2"
    assert browser.find_element("id", "verdict").text == "HEALTHY: 7 host(s)"
    # the second gather (the page's polls keep them going): compiler2 down, no reload
    wait_for(browser, "compiler2 shown as error",
             lambda d: host_health(d).get(C2) == "error", 30)
    assert "NEEDS ATTENTION" in browser.find_element("id", "verdict").text
    assert f"{C2}: Puppet Server not answering" in browser.find_element("id", "findings").text
    assert console_errors(browser) == []  # nothing refused by the CSP, no script error


@pytest.mark.reliability(fault="host names, environments and messages that are HTML",
                         outcome="shown as text: no element is created from them")
def test_names_that_are_markup_are_shown_as_text(browser, served):
    document = copy.deepcopy(HEALTHY)
    document["environments"][HOSTILE] = document["environments"]["production"]
    document["findings"].append({"severity": "warning", "subject": HOSTILE,
                                 "message": HOSTILE, "hosts": [MAIN]})
    url, _ = served(Gathers(document))
    browser.get(url)
    wait_for(browser, "the hostile finding", lambda d: HOSTILE in d.find_element(
        "id", "findings").text, 30)
    assert HOSTILE in browser.find_element("id", "environments").text
    assert browser.find_elements("id", "injected") == []
    assert browser.title == "puppetops: fleet status"


@pytest.mark.reliability(fault="the status gather fails after a good one",
                         outcome="the page shows the error with its time and keeps the last "
                                 "good status, marked stale")
def test_a_failed_gather_shows_on_the_page_and_the_last_status_stays_stale(browser, served):
    url, _ = served(Gathers(HEALTHY, UsageError("inventory.yaml: not valid YAML")))
    browser.get(url)
    problem = wait_for(browser, "the gather's error", lambda d: d.find_element(
        "id", "gather-error").text, 30)
    assert "The last status gather failed at " in problem
    assert "inventory.yaml: not valid YAML" in problem and "(stale)" in problem
    assert "stale" in browser.find_element("tag name", "body").get_attribute("class")
    assert set(host_health(browser).values()) == {"ok"}  # the last good status, still shown


def test_without_mermaid_js_the_page_shows_the_diagram_s_text(browser, served):
    url, _ = served(Gathers(HEALTHY), mermaid=False)
    console_errors(browser)
    browser.get(url)
    text = wait_for(browser, "the diagram's text", lambda d: d.find_element(
        "id", "diagram-text").text, 30)
    assert text.startswith("flowchart LR") and "compiler2.example.com" in text
    assert "is not installed on this webhook" in browser.find_element("id", "diagram-note").text
    assert browser.find_elements("css selector", "#diagram svg") == []
    assert set(host_health(browser).values()) == {"ok"}
    assert console_errors(browser) == []
