"""install_webhook's files, from real inventories and a real known_hosts file: the webhook's
inventory is the controller's servers as they are (a compiler added there is in it at the next
run), its known_hosts holds exactly the keys the controller verifies, and its config names
the secret's file but never the secret. The plan itself runs on the lab
(tests/test_webhook_install_lab.py)."""
from __future__ import annotations

import os
import subprocess
import zipfile
from pathlib import Path

import pytest
import yaml

from puppetops import Inventory, Run, wheelhouse
from puppetops.errors import UsageError
from puppetops.plans.install_webhook import config_text, health_url, inventory_text, listen_address
from puppetops.steps.secret_file import SecretFile
from puppetops.steps.ssh_keys import pinned_known_hosts
from puppetops.steps.webhook_files import PATHS
from puppetops.webhook import config as settings

from helpers import cli


def keypair(tmp: Path, name: str) -> str:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp / name)],
                   check=True)
    return " ".join((tmp / f"{name}.pub").read_text().split()[:2])


def controller(tmp: Path, compilers: int = 2) -> tuple[Inventory, dict[str, str]]:
    keys = {h: keypair(tmp, h) for h in ("main", *(f"c{i}" for i in range(1, compilers + 1)),
                                         "lb")}
    (tmp / "known_hosts").write_text(
        f"10.0.0.1,main.example.com {keys['main']}\n"
        + "".join(f"[10.0.0.{i + 1}]:2222 {keys[f'c{i}']}\n" for i in range(1, compilers + 1))
        + f"lb.example.com {keys['lb']}\nunrelated.example.com {keys['lb']}\n")
    document = {
        "config": {"ssh": {"user": "root", "known-hosts-file": str(tmp / "known_hosts")}},
        "vars": {"lb_name": "lb.example.com"},
        "groups": [
            {"name": "main", "targets": [{"name": "main.example.com", "uri": "10.0.0.1"}]},
            {"name": "compilers", "vars": {"agent_environments": ["production", "dev"]},
             "targets": [{"name": f"c{i}.example.com", "alias": f"c{i}",
                          "uri": f"10.0.0.{i + 1}:2222"} for i in range(1, compilers + 1)]},
            {"name": "loadbalancers", "targets": [{"name": "lb.example.com",
                                                  "config": {"ssh": {"user": "ops",
                                                                     "run-as": "root"}}}]},
            {"name": "agents", "targets": ["a1.example.com"]}]}
    return Inventory.from_dict(document), keys


def rendered(inventory: Inventory) -> tuple[str, str]:
    with Run(inventory, lock=False) as run:
        main, compilers = run.targets("main")[0], run.targets("compilers")
        lbs = run.targets("loadbalancers")
        return (inventory_text(main, compilers, lbs),
                pinned_known_hosts([main, *compilers, *lbs]))


def test_the_webhooks_inventory_is_the_controllers_servers_reached_with_mains_own_key(tmp_path):
    inventory, _ = controller(tmp_path)
    text, _ = rendered(inventory)
    (tmp_path / "webhook.yaml").write_text(text)
    theirs = Inventory.load(str(tmp_path / "webhook.yaml"))
    with Run(theirs, lock=False) as run:
        assert [t.name for t in run.targets("main,compilers")] == \
            ["main.example.com", "c1.example.com", "c2.example.com"]
        c1, lb = run.targets("c1")[0], run.targets("loadbalancers")[0]
        assert (c1.host, c1.port, c1.vars["agent_environments"], c1.vars["lb_name"]) == \
            ("10.0.0.2", 2222, ["production", "dev"], "lb.example.com")
        assert lb.transport_config["user"] == "ops" and lb.transport_config["run-as"] == "root"
        assert c1.transport_config["private-key"] == PATHS.key
        assert c1.transport_config["known-hosts-file"] == PATHS.known_hosts
        assert c1.transport_config["host-key-check"] is True
        assert [t.name for t in run.targets("all")] == \
            ["main.example.com", "c1.example.com", "c2.example.com", "lb.example.com"]


def test_a_compiler_added_to_the_controllers_inventory_is_in_the_next_rendering(tmp_path):
    (tmp_path / "two").mkdir()
    (tmp_path / "three").mkdir()
    before = rendered(controller(tmp_path / "two", 2)[0])
    inventory, keys = controller(tmp_path / "three", 3)
    after = rendered(inventory)
    assert "c3.example.com" not in before[0] and "c3.example.com" in after[0]
    assert f"[10.0.0.4]:2222 {keys['c3']}" in after[1].splitlines()


def test_known_hosts_holds_exactly_the_keys_the_controller_verifies(tmp_path):
    inventory, keys = controller(tmp_path)
    _, pinned = rendered(inventory)
    assert pinned.splitlines() == [f"10.0.0.1 {keys['main']}", f"[10.0.0.2]:2222 {keys['c1']}",
                                   f"[10.0.0.3]:2222 {keys['c2']}",
                                   f"lb.example.com {keys['lb']}"]


def test_a_server_the_controller_has_no_host_key_for_is_refused(tmp_path):
    inventory, _ = controller(tmp_path)
    (tmp_path / "known_hosts").write_text(
        "\n".join(line for line in (tmp_path / "known_hosts").read_text().splitlines()
                  if not line.startswith("lb.example.com")) + "\n")
    with pytest.raises(UsageError, match=r"lb.example.com: no host key for lb.example.com in "):
        rendered(inventory)


def test_the_config_names_the_secrets_file_and_loads_as_the_webhook_reads_it(tmp_path):
    text = config_text(listen_address("0.0.0.0", 8088), "ops")
    document = yaml.safe_load(text)
    assert document["secret_file"] == PATHS.secret and "secret" not in document
    secret = tmp_path / "secret"
    secret.write_text("s3cret\n")
    secret.chmod(0o600)
    (tmp_path / "config.yaml").write_text(text.replace(PATHS.secret, str(secret)))
    loaded = settings.load(str(tmp_path / "config.yaml"), environ={})
    assert (loaded.host, loaded.port, loaded.prefix, loaded.secret) == \
        ("0.0.0.0", 8088, "ops", "s3cret")
    # the status page on, drawn by the mermaid.min.js install_webhook ships next to the venv
    assert (loaded.status_page, loaded.status_refresh, loaded.mermaid_js) == \
        (True, 10, PATHS.mermaid_js)
    assert settings.load(None, {"allow_unsigned": True}, environ={}).status_page is False
    assert health_url("0.0.0.0", 8088) == "http://127.0.0.1:8088/health"
    assert listen_address("::", 8088) == "[::]:8088"
    assert settings.parse_listen(listen_address("fd00::1", 80)) == ("fd00::1", 80)


def test_a_secret_file_is_generated_once_given_ones_replace_it_and_neither_is_shown(tmp_path):
    path = str(tmp_path / "etc" / "secret")
    inventory = Inventory.from_dict({"targets": [{"name": "localhost"}]})
    with Run(inventory, lock=False) as run:
        made = run.step(SecretFile(path), "localhost")[0]
        generated = Path(path).read_text().strip()
        again = run.step(SecretFile(path), "localhost")[0]
        given = run.step(SecretFile(path, "given-secret"), "localhost")[0]
        same = run.step(SecretFile(path, "given-secret"), "localhost")[0]
    assert (made.status, again.status, given.status, same.status) == \
        ("changed", "unchanged", "changed", "unchanged")
    assert len(generated) == 64 and Path(path).read_text() == "given-secret\n"
    assert oct(Path(path).stat().st_mode & 0o777) == "0o600"
    for result in (made, given):
        assert generated not in repr(result) and "given-secret" not in repr(result)


@pytest.mark.reliability(fault="install_webhook given a secret file others can read, a bad "
                               "address or port",
                         outcome="exit 2 with one line naming what to fix; no host contacted")
@pytest.mark.parametrize("args, expected", [
    (["--port", "99999"], "port: expected 1 to 65535, got 99999"),
    (["--bind", "$(touch /tmp/x)"], "bind: expected an IP address or host name"),
    (["--secret-file", "SECRET"], "readable or writable by group or others"),
])
@pytest.mark.slow
@pytest.mark.serial("the run lock of 127.0.0.1:1 (every case's hosts), taken "
                    "before the parameters are checked")
def test_bad_parameters_exit_2_before_any_host_is_contacted(tmp_path, args, expected):
    secret = tmp_path / "secret"
    secret.write_text("x\n")
    secret.chmod(0o644)
    inventory = tmp_path / "inventory.yaml"
    inventory.write_text("".join(f"  - {{name: {group}, targets: [{{name: {group}.example.com, "
                                 f"uri: '127.0.0.1:1'}}]}}\n"
                                 for group in ("main", "compilers", "loadbalancers")))
    (tmp_path / "known_hosts").write_text("")
    inventory.write_text(f"config: {{ssh: {{known-hosts-file: {tmp_path}/known_hosts}}}}\n"
                         "groups:\n" + inventory.read_text())
    proc = cli("install-webhook", "-i", str(inventory),
               *[str(secret) if a == "SECRET" else a for a in args])
    assert proc.returncode == 2, proc.stderr
    assert expected in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.slow
def test_the_wheel_holds_the_sources_as_they_are_not_a_stale_setuptools_build(tmp_path):
    root = tmp_path / "checkout"
    for path, text in {
            "setup.cfg": "[metadata]\nname = puppetops\nversion = 0.0.1\n[options]\n"
                         "packages = puppetops, puppetops.plans\npackage_dir =\n"
                         "    puppetops.plans = plans\n",
            "pyproject.toml": '[build-system]\nrequires = ["setuptools"]\n'
                              'build-backend = "setuptools.build_meta"\n',
            "puppetops/__init__.py": "", "plans/__init__.py": "",
            "build/lib/puppetops/deleted_since.py": "import gone\n"}.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text(text)
    for old in range(wheelhouse.KEEP):  # older builds, of which the cache keeps the newest
        (tmp_path / "cache" / str(old)).mkdir(parents=True)
        (tmp_path / "cache" / str(old) / "complete").write_text("")
        os.utime(tmp_path / "cache" / str(old) / "complete", (1000 + old, 1000 + old))
    wheelhouse._build_into(tmp_path / "cache" / "new", root, [])
    wheel = next((tmp_path / "cache" / "new").glob("puppetops-*.whl"))
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == ["1", "2", "new"]
    names = zipfile.ZipFile(wheel).namelist()
    assert "puppetops/__init__.py" in names and "puppetops/plans/__init__.py" in names
    assert "puppetops/deleted_since.py" not in names
    assert not (root / "puppetops.egg-info").exists()  # the checkout is left as it was


@pytest.mark.reliability(fault="install_webhook from a controller without npm nor a cached "
                               "mermaid.min.js",
                         outcome="a message says the status page shows the diagram's text and "
                                 "how to fetch it; nothing is shipped, the install goes on")
def test_without_mermaid_js_install_webhook_says_the_page_shows_the_text(tmp_path, monkeypatch):
    from io import StringIO

    from puppetops import mermaid_js
    from puppetops.output import JsonOutput, Output
    from puppetops.plans.install_webhook import ship_mermaid
    monkeypatch.setattr(mermaid_js, "CACHE", tmp_path / "cache")
    monkeypatch.setenv("PATH", str(tmp_path))  # no npm
    said = JsonOutput(stdout=StringIO())
    inventory = Inventory.from_dict({"targets": [{"name": "localhost"}]})
    with Run(inventory, lock=False, output=Output(said)) as run:
        ship_mermaid(run, run.targets("localhost")[0])
        assert run.steps == []  # nothing shipped
    assert said.messages == [
        "install_webhook: the status page will show the fleet's diagram as Mermaid text, not "
        f"drawn: npm is missing on this controller, so mermaid {mermaid_js.VERSION}'s "
        "mermaid.min.js cannot be fetched: run `invoke lab-setup` (Debian's nodejs and npm) "
        "or install npm, then `python -m puppetops.mermaid_js`"]
