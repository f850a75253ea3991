"""The webhook's status page without hosts: its routes called as WSGI (headers included), on a
real WebhookServer (real store, queue, page files, gather thread) whose gather is the real
``status`` plan over canned host outputs (test_status.py's fleets). The lab test
(test_status_lab.py) loads the page in Chromium from the webhook install_webhook put on main.
"""
from __future__ import annotations

import json
import re
import threading
import time
from importlib import resources
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from puppetops import mermaid_js
from puppetops.errors import UsageError
from puppetops.output.status import mermaid
from puppetops.testing.webhook import RecordingDeploy
from puppetops.webhook import config as settings
from puppetops.webhook.app import STATUS_OFF
from puppetops.webhook.config import WebhookConfig
from puppetops.webhook.page import CSP
from puppetops.webhook.server import WebhookServer

from helpers import REPO
from test_status import C2, healthy_fleet, run_status

HEALTHY = run_status(healthy_fleet())[1].document


def compiler_down() -> dict[str, Any]:
    fleet = healthy_fleet()
    fleet[C2]["server"] = "curl: (7) Failed to connect"
    return run_status(fleet)[1].document


class Gathers:
    """The page's gather: hands out documents (or raises) in turn, counting the calls."""

    def __init__(self, *outcomes: dict[str, Any] | Exception):
        self.outcomes, self.calls = list(outcomes), 0
        self.done = threading.Event()

    def __call__(self) -> dict[str, Any]:
        self.calls += 1
        outcome = self.outcomes[min(self.calls, len(self.outcomes)) - 1]
        self.done.set()
        if isinstance(outcome, Exception):
            raise outcome
        return outcome


def call(app: Callable, path: str, method: str = "GET") -> tuple[int, dict[str, str], bytes]:
    """One request through the WSGI app: status, headers, body."""
    seen: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]]) -> None:
        seen.update(status=int(status.split()[0]), headers=dict(headers))
    body = b"".join(app({"REQUEST_METHOD": method, "PATH_INFO": path,
                         "REMOTE_ADDR": "127.0.0.1"}, start_response))
    return seen["status"], seen["headers"], body


@pytest.fixture
def page(tmp_path: Path) -> Iterator[Callable[..., WebhookServer]]:
    """``page(gather, **config)``: a webhook with its status page on (refresh one hour, so
    the thread gathers once when first asked, then waits); stopped at the end."""
    started: list[WebhookServer] = []

    def start(gather: Gathers, **config: Any) -> WebhookServer:
        values = dict(host="127.0.0.1", port=0, secret="s" * 32, status_page=True,
                      status_refresh=3600, database=str(tmp_path / f"db{len(started)}"),
                      log_file=str(tmp_path / "log"), mermaid_js=str(tmp_path / "mermaid.js"))
        server = WebhookServer(WebhookConfig(**{**values, **config}), RecordingDeploy(), gather)
        started.append(server)
        return server

    yield start
    for server in started:  # never served: its listening socket closed here
        server.close()
        server.http.close()


def status_json(server: WebhookServer) -> dict[str, Any]:
    code, headers, body = call(server.app, "/status.json")
    assert code == 200 and headers["Content-Type"] == "application/json"
    return json.loads(body)


def gathered(server: WebhookServer, gather: Gathers) -> dict[str, Any]:
    """/status.json once the thread's first gather (which that request asked for) is in."""
    status_json(server)
    assert gather.done.wait(30), "the gather thread did not gather"
    for _ in range(300):
        data = status_json(server)
        if data["gathered_at"] or data["error"]:
            return data
        time.sleep(0.05)
    raise AssertionError("the first gather never landed")


def test_the_page_is_html_with_a_csp_and_its_script_in_a_file(page, tmp_path):
    server = page(Gathers(HEALTHY))
    (tmp_path / "mermaid.js").write_text("window.mermaid = {};")
    code, headers, body = call(server.app, "/")
    assert code == 200 and headers["Content-Type"] == "text/html; charset=utf-8"
    assert headers["Content-Security-Policy"] == CSP
    assert "script-src 'self';" in CSP and "unsafe-eval" not in CSP
    html = body.decode()
    scripts = re.findall(r"<script\b([^>]*)>(.*?)</script>", html, re.S)
    assert [attrs for attrs, _ in scripts] == [' src="/mermaid.min.js" defer',
                                               ' src="/status.js" defer']
    assert all(text == "" for _, text in scripts)  # no inline script
    assert not re.search(r"<[^>]*\son\w+\s*=", html)  # no inline event handler either
    for path, kind in (("/status.js", "text/javascript"), ("/status.css", "text/css")):
        code, headers, body = call(server.app, path)
        assert code == 200 and headers["Content-Type"].startswith(kind)
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert body == resources.files("puppetops.webhook").joinpath(
            "static", path[1:]).read_bytes()
    code, headers, body = call(server.app, "/mermaid.min.js")
    assert (code, body) == (200, b"window.mermaid = {};")
    assert call(server.app, "/", "POST")[0] == 405


def test_status_json_is_the_status_document_plus_its_mermaid_text_and_recent_deploys(page):
    gather = Gathers(HEALTHY)
    server = page(gather)
    deploy = server.store.create("production", "a" * 40, "github")
    data = gathered(server, gather)
    assert data["status"] == HEALTHY  # the document `puppetops status --format json` holds
    assert data["mermaid"] == mermaid(HEALTHY)
    assert data["view"]["verdict"] == "HEALTHY: 7 host(s)"
    assert set(data["view"]["details"]) == set(HEALTHY["hosts"])
    assert data["view"]["ca"][0].startswith("CA on main.example.com: its certificate expires")
    assert data["refresh"] == 3600 and data["error"] is None and data["stale"] is False
    assert data["gathered_at"] and data["took"] >= 0
    assert [(d["id"], d["environment"], d["status"]) for d in data["deploys"]] == \
        [(deploy, "production", "queued")]
    assert data["mermaid_js"] is False  # none at the configured path


def test_requests_read_the_last_gather_and_never_gather_themselves(page):
    """Many tabs polling: one gather, by the thread, for however many requests."""
    gather = Gathers(HEALTHY)
    server = page(gather)
    first = gathered(server, gather)
    for _ in range(50):
        assert status_json(server)["gathered_at"] == first["gathered_at"]
        assert call(server.app, "/")[0] == 200
    assert gather.calls == 1  # the next one waits for the interval (an hour here)


@pytest.mark.reliability(fault="the status gather fails (inventory unreadable, a bug)",
                         outcome="the page shows the error and its time; the last good status "
                                 "stays, marked stale, until a gather succeeds again")
def test_a_failed_gather_shows_its_error_and_keeps_the_last_status_marked_stale(page):
    from puppetops.errors import UsageError as Broken
    gather = Gathers(HEALTHY, Broken("inventory.yaml: not valid YAML"), compiler_down())
    server = page(gather)
    good = gathered(server, gather)
    server.fleet.gather_once()
    data = status_json(server)
    assert data["error"] == "inventory.yaml: not valid YAML" and data["error_at"]
    assert data["stale"] is True and data["status"] == HEALTHY
    assert data["gathered_at"] == good["gathered_at"]
    server.fleet.gather_once()
    data = status_json(server)
    assert data["error"] is None and data["stale"] is False
    assert data["status"]["healthy"] is False
    assert data["status"]["hosts"][C2]["health"] == "error"


def test_a_gather_failing_before_any_success_shows_the_error_and_no_status(page):
    gather = Gathers(KeyError("hosts"))
    data = gathered(page(gather), gather)
    assert data["status"] is None and data["stale"] is False
    assert data["error"] == "KeyError: 'hosts'"


def test_without_mermaid_js_the_page_loads_no_renderer_and_its_url_is_404(page):
    server = page(Gathers(HEALTHY))
    html = call(server.app, "/")[2].decode()
    assert "mermaid.min.js" not in html and '<script src="/status.js" defer>' in html
    code, _, body = call(server.app, "/mermaid.min.js")
    assert code == 404 and "diagram's text instead" in json.loads(body)["error"]
    # the page's script shows the text in a <pre> with a note when window.mermaid is missing
    script = resources.files("puppetops.webhook").joinpath("static", "status.js").read_text()
    assert "if (!window.mermaid)" in script and "is not installed on this" in script


def test_the_status_page_is_off_unless_the_config_turns_it_on(tmp_path):
    server = WebhookServer(WebhookConfig(port=0, secret="s" * 32,
                                         database=str(tmp_path / "db")), RecordingDeploy(),
                           Gathers(HEALTHY))
    try:
        assert server.fleet is None
        for path in ("/", "/status.json", "/status.js", "/mermaid.min.js"):
            code, _, body = call(server.app, path)
            assert code == 404 and json.loads(body)["error"] == STATUS_OFF
        assert call(server.app, "/health")[0] == 200
    finally:
        server.close()
        server.http.close()


def test_the_config_file_sets_the_page_its_refresh_and_mermaid_path(tmp_path):
    path = tmp_path / "webhook.yaml"
    path.write_text("allow_unsigned: true\nstatus_page: true\nstatus_refresh: 30\n"
                    "mermaid_js: js/mermaid.min.js\n")
    loaded = settings.load(str(path), environ={})
    assert (loaded.status_page, loaded.status_refresh) == (True, 30)
    assert loaded.mermaid_js == str(tmp_path / "js" / "mermaid.min.js")
    assert settings.load(None, {"allow_unsigned": True}, environ={}).status_page is False


@pytest.mark.parametrize("line, said", [
    ("status_refresh: 0", "status_refresh: expected a whole number of seconds of at least 1, got 0"),
    ("status_refresh: ten", "status_refresh: expected a whole number of seconds of at least 1, "
                            "got 'ten'"),
    ("status_page: yes please", "status_page: expected true or false, got 'yes please'"),
])
def test_bad_page_settings_are_usage_errors_naming_the_key(tmp_path, line, said):
    path = tmp_path / "webhook.yaml"
    path.write_text(f"allow_unsigned: true\n{line}\n")
    with pytest.raises(UsageError, match=re.escape(said)):
        settings.load(str(path), environ={})


# -- mermaid.min.js on the controller --------------------------------------------------------

def test_the_bootstrapped_cache_holds_the_pinned_mermaid_and_ensure_uses_no_network():
    found = mermaid_js.ensure()  # scripts/bootstrap fetched it: nothing to fetch here
    assert found == mermaid_js.path() and mermaid_js.cached() == found


def test_the_page_renders_the_mermaid_version_the_tests_parse_with():
    parser = json.loads((REPO / "tests" / "mermaid" / "package.json").read_text())
    assert parser["dependencies"]["mermaid"] == mermaid_js.VERSION


@pytest.mark.reliability(fault="mermaid.min.js missing on a controller without npm",
                         outcome="one line saying to install npm (invoke lab-setup); nothing "
                                 "half-fetched in the cache")
def test_without_npm_ensure_says_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no npm on it
    with pytest.raises(mermaid_js.MermaidJsError, match="npm is missing .* `invoke lab-setup`"):
        mermaid_js.ensure(tmp_path / "cache")
    assert not (tmp_path / "cache").exists()


def test_a_cached_file_that_is_not_the_pinned_one_is_not_used(tmp_path):
    mermaid_js.path(tmp_path).parent.mkdir(parents=True)
    mermaid_js.path(tmp_path).write_text("alert('not mermaid')")
    assert mermaid_js.cached(tmp_path) is None
