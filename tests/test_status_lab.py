"""``puppetops status`` on the session's stood-up infrastructure (the demo's, tests/
puppet_fixtures.py): healthy → exit 0; a stopped compiler, compilers at different commits and
a certificate about to expire → exit 1 naming the culprit; the Mermaid picture parses with
mermaid's own parser and names every lab host. The webhook's status page (which the demo's
install_webhook put on main) is loaded in headless Chromium for the stopped compiler: one
stop and start of a Puppet Server serves both the command and the page. Every fault is
undone before the test ends (the infrastructure is shared), and the status is healthy again.
"""
from __future__ import annotations

import json
import shlex
import time

import pytest

from puppetops.lab.git_push import webhook_url
from puppetops.puppet import node
from puppetops.steps import puppetserver_control
from puppetops.steps.ca import ca_api
from puppetops.steps.facts import gather
from puppetops.steps.puppetserver import PuppetserverRunning

import mermaid_parser
from browser import browser, host_health, wait_for  # noqa: F401 (browser: a fixture)
from helpers import cli
from test_operate_e2e import RECORD, fqdn

pytestmark = pytest.mark.lab
SHORT_LIVED = "short-lived.puppetops.test"
SERVERS = ("main", "compiler1", "compiler2", "lb")
GATHER = 30.0  # seconds a status gather may take on this loaded 2-core box


def status(infra, *args: str):
    return cli("status", "-i", str(infra.lab.inventory), *args, timeout=300)


def status_json(infra) -> tuple[int, dict]:
    proc = status(infra, "--format", "json")
    return proc.returncode, json.loads(proc.stdout)


def said(proc) -> str:
    """The line naming what needs attention (stderr also has the progress lines)."""
    return next(line for line in proc.stderr.splitlines() if line.startswith("error: "))


def wait_healthy(infra, timeout: float = 300.0) -> None:
    """Until status exits 0 (a restarted Puppet Server takes its time, then HAProxy's checks)."""
    deadline = time.monotonic() + timeout
    while (proc := status(infra)).returncode != 0:
        assert time.monotonic() < deadline, f"not healthy again:\n{proc.stdout}\n{proc.stderr}"
        time.sleep(5)


def test_the_demo_ends_healthy_and_status_names_every_lab_host(infrastructure):
    infra = infrastructure
    names = {h.fqdn for h in infra.lab.hosts}
    shown = infra.demo["status"]  # the demo's JSON document carries its closing status
    assert shown["healthy"] and set(shown["hosts"]) == names, shown["findings"]
    code, doc = status_json(infra)
    assert code == 0, doc["status"]["findings"]
    found = doc["status"]
    assert doc["ok"] and set(found["hosts"]) == names
    servers = {fqdn(infra, s) for s in ("main", "compiler1", "compiler2")}
    assert set(found["environments"]["production"]["servers"]) == servers
    assert found["environments"]["production"]["agree"]
    assert {m["state"] for m in found["loadbalancers"][fqdn(infra, "lb")]["members"].values()} \
        == {"UP"}
    assert found["ca"]["ca_cert_days_left"] > 90 and found["ca"]["pending"] == []
    assert {c["name"] for c in found["ca"]["signed"]} >= names - {fqdn(infra, "lb")}
    assert found["webhook"]["status"] == "ok"  # the demo installed it on main
    for server in servers:
        heap = found["hosts"][server]["server"]
        assert 0 < heap["heap_used"] < heap["heap_max"]
    assert {n["name"] for n in found["agents"]["nodes"]} == {fqdn(infra, "agent1"),
                                                            fqdn(infra, "agent2")}
    # the demo installs PuppetDB on main: read there with main's certificate, it gives the
    # agents' last reports
    assert found["puppetdb"]["state"] == "running" and found["agents"]["source"] == "puppetdb"
    human = status(infra)
    assert human.returncode == 0 and "HEALTHY: 6 host(s)" in human.stdout


def test_the_mermaid_picture_parses_and_names_every_lab_host(infrastructure):
    proc = status(infrastructure, "--format", "mermaid")
    assert proc.returncode == 0, proc.stderr
    for host in infrastructure.lab.hosts:
        assert host.fqdn in proc.stdout
    assert mermaid_parser.parse(proc.stdout) == {"ok": True, "diagramType": "flowchart-v2"}


def open_page(infra, browser) -> int:
    """The webhook's status page loaded, every server shown healthy and the diagram drawn
    as SVG naming them; returns its refresh interval (seconds)."""
    with infra.run() as run:
        url = webhook_url(run.targets("main")[0]) + "/"
    servers = {fqdn(infra, s) for s in SERVERS}
    browser.get(url)
    shown = wait_for(browser, "every server on the page, healthy", lambda d: (
        h := host_health(d)) and servers <= set(h) and set(h.values()) == {"ok"} and h, 120)
    assert set(shown) == servers  # the webhook's inventory: main, compilers, LBs
    agents = browser.find_element("id", "agents").text
    assert fqdn(infra, "agent1") in agents and fqdn(infra, "agent2") in agents
    svg = wait_for(browser, "the diagram drawn as SVG", lambda d: d.find_element(
        "css selector", "#diagram svg").text, 60)
    assert all(name in svg for name in servers), svg
    return int(browser.find_element("id", "refresh").text)


@pytest.mark.reliability(fault="a compiler's Puppet Server stopped",
                         outcome="status exits 1 naming that compiler (and HAProxy's DOWN "
                                 "member), the status page shows it down without a reload; "
                                 "lb-ready right after its start waits for it, and all is "
                                 "healthy again")
def test_a_stopped_compiler_is_named_and_status_exits_1(infrastructure, browser):
    infra = infrastructure
    c2 = fqdn(infra, "compiler2")
    refresh = open_page(infra, browser)
    browser.execute_script("window.sameLoad = true")  # gone if the page reloaded
    try:
        with infra.run() as run:
            run.each("facts", gather, [c2])
            run.each("stop puppetserver", lambda ctx: puppetserver_control.stop(
                ctx, node.layout(ctx.target)), [c2])
            try:
                # the page: the gather under way or the next (≤ one interval, then a gather),
                # then the page's next poll (≤ one interval)
                wait_for(browser, f"{c2} shown down on the page",
                         lambda d: host_health(d).get(c2) == "error", 2 * refresh + GATHER)
                assert browser.execute_script("return window.sameLoad") is True
                assert f"{c2}: Puppet Server not answering" in browser.find_element(
                    "id", "findings").text
                assert host_health(browser)[fqdn(infra, "compiler1")] == "ok"
                proc = status(infra)
                assert proc.returncode == 1, proc.stdout
                assert f"{c2}: Puppet Server not answering" in said(proc)
                assert f"{fqdn(infra, 'compiler1')}: " not in said(proc)
            finally:
                browser.get("about:blank")  # no open page: the webhook's gathers stop
                run.each("start puppetserver", lambda ctx: puppetserver_control.start(
                    ctx, node.layout(ctx.target)), [c2])
        starting = infra.ssh("compiler2", "curl -sk --max-time 5 "
                                          f"https://{c2}:8140/status/v1/simple", check=False)
    finally:
        # lb-ready right after the start: it waits for the starting server (a JVM start on a
        # loaded 2-core box can take over 300 s), then finds it serving
        ready = cli("lb-ready", "--targets", c2, "-i", str(infra.lab.inventory),
                    "--up-timeout", "900", timeout=1200)
        if ready.returncode != 0:  # leave the lab as the next tests need it, then fail
            with infra.run() as run:
                for _ in range(3):
                    if run.step(PuppetserverRunning(), [c2], catch_errors=True).ok:
                        break
    assert starting.strip() != "running"  # lb-ready had to wait (it used to refuse)
    assert ready.returncode == 0, ready.stderr[-3000:]
    wait_healthy(infra)


@pytest.mark.reliability(fault="compilers at different commits of an environment",
                         outcome="status exits 1 naming the environment and the odd compiler")
def test_compilers_at_different_commits_name_the_environment(infrastructure):
    infra = infrastructure
    other = "0123456789abcdef0123456789abcdef01234567"
    record = shlex.quote(RECORD)
    infra.ssh("compiler1", f"cp -p {record} {record}.status-test && sed -i "
                           f"'s/\"signature\": *\"[0-9a-f]*\"/\"signature\": \"{other}\"/' {record}")
    try:
        assert other in infra.ssh("compiler1", f"cat {record}")
        proc = status(infra)
        assert proc.returncode == 1
        assert (f"environment production: servers disagree: {fqdn(infra, 'compiler1')} at "
                f"{other[:12]}") in said(proc)
    finally:
        infra.ssh("compiler1", f"mv -f {record}.status-test {record}")
    wait_healthy(infra)


@pytest.mark.reliability(fault="a certificate signed by the CA that expires within 30 days",
                         outcome="status exits 1 naming the certificate and its expiry")
def test_a_certificate_expiring_within_30_days_is_an_error(infrastructure):
    infra = infrastructure
    main = fqdn(infra, "main")
    with infra.run() as run:
        target = run.targets("main")[0]
        layout = node.layout(target)
        csr = infra.ssh("main", "openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 "
                                f"-nodes -keyout /dev/null -subj /CN={SHORT_LIVED} 2>/dev/null")

        def sign_short_lived(ctx) -> list:
            submitted = ca_api.submit(ctx, layout, main, {SHORT_LIVED: csr})
            signed = ca_api.call(ctx, layout, main, "PUT", [f"certificate_status/{SHORT_LIVED}"],
                                 {"desired_state": "signed", "cert_ttl": 10 * 86400})
            return [submitted[SHORT_LIVED][0], signed[0][0]]

        assert run.each("sign a short-lived certificate", sign_short_lived, [target])[0].value \
            == [200, 204]
        try:
            proc = status(infra)
            assert proc.returncode == 1, proc.stdout
            assert f"certificate {SHORT_LIVED}: expires in " in said(proc)
            assert "certificate agent1" not in said(proc)
        finally:
            cleaned = run.each("clean it", lambda ctx: ca_api.delete(
                ctx, layout, main, [SHORT_LIVED]), [target])
            assert cleaned.ok and cleaned[0].value[SHORT_LIVED][0] == 204
    wait_healthy(infra)
