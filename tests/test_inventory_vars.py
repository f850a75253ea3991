"""The inventory vars the plans read have a schema (``puppetops.puppet.vars``): a misspelt var or
a value the plans cannot take is a warning naming file and line (an error with --strict), the
user's own vars stay silent, and the readers take their choices and defaults from the same
table. The transports' defaults are the schema's too."""
from __future__ import annotations

import pytest

from helpers import REPO, cli
from puppetops import Inventory
from puppetops.errors import UsageError
from puppetops.inventory.schema import TRANSPORT_OPTIONS
from puppetops.puppet import node
from puppetops.steps.code import deployers
from puppetops.steps.lb import backends
from puppetops.puppet.vars import VARS, markdown
from puppetops.transport.ssh import SshConnection, SshCredentials

INVENTORY = """\
vars:
  lb_name: lb.example.com
  lb_backnd: nginx
  role: web
  datacenter: {rack: 4}
groups:
  - name: lbs
    vars:
      lb_backend: haproxi
      cert_key_size: 4096
    targets:
      - name: lb1
        uri: local://lb1
        vars:
          cert_keysize: 2048
          agent_environments: [production, 7]
"""


@pytest.fixture
def inventory(tmp_path):
    path = tmp_path / "inventory.yaml"
    path.write_text(INVENTORY)
    return path


@pytest.mark.slow
@pytest.mark.reliability(fault="a misspelt inventory var (lb_backnd) or a value the plans "
                               "cannot take (lb_backend: haproxi)",
                         outcome="a warning naming file and line (exit 2 with --strict); the "
                                 "user's own vars stay silent")
def test_misspelt_and_invalid_vars_are_warnings_naming_file_and_line(inventory):
    proc = cli("inventory", "-i", str(inventory))
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.splitlines() == [
        f"warning: {inventory}:3: Unknown var 'lb_backnd' in group 'all': did you mean "
        "'lb_backend'? (puppetops reads 'lb_backend' and ignores 'lb_backnd')",
        f"warning: {inventory}:9: Invalid value for var 'lb_backend' in group 'lbs': expected "
        "one of haproxy, nginx, got string 'haproxi'",
        f"warning: {inventory}:15: Unknown var 'cert_keysize' in target 'lb1': did you mean "
        "'cert_key_size'? (puppetops reads 'cert_key_size' and ignores 'cert_keysize')",
        f"warning: {inventory}:16: Invalid value for var 'agent_environments' in target 'lb1': "
        "expected a list of strings (or one comma-separated string), got list",
    ]
    strict = cli("inventory", "-i", str(inventory), "--strict")
    assert strict.returncode == 2 and strict.stdout == ""
    warned = [line.removeprefix("warning: ") for line in proc.stderr.splitlines()]
    assert strict.stderr.splitlines() == [f"error: {warned[0]}", *warned[1:]]  # all at once


def test_an_inventory_loaded_without_the_table_checks_no_vars(inventory):
    assert Inventory.load(inventory).warnings == []
    assert len(Inventory.load(inventory, var_table=VARS).warnings) == 4


def test_the_readers_take_their_choices_and_defaults_from_the_table():
    bare, nginx, wrong = (Inventory.from_dict({"targets": [
        {"name": "a.example.com"},
        {"name": "b.example.com", "vars": {"lb_backend": "nginx", "cert_key_size": 2048}},
        {"name": "c.example.com", "vars": {"lb_backend": "haproxi", "cert_key_type": "dsa"}},
    ]}).targets)
    assert backends.name(bare) == VARS["lb_backend"].default == "haproxy"
    assert backends.name(nginx) == "nginx"
    assert deployers.of(bare).name == VARS["code_deployer"].default == "r10k"
    assert node.cert_key(nginx).size == 2048  # YAML's number, read as its text
    assert node.agent_service(bare) == VARS["agent_service"].default
    with pytest.raises(UsageError, match="lb_backend must be one of haproxy, nginx"):
        backends.of(wrong)
    with pytest.raises(UsageError, match="cert_key_type must be one of rsa, ec"):
        node.cert_key(wrong)


def test_every_choice_of_the_schema_has_its_implementation_and_no_other():
    assert set(VARS["lb_backend"].choices) == set(backends.BACKENDS)
    assert set(VARS["code_deployer"].choices) == set(deployers.DEPLOYERS)


def test_the_readme_var_table_is_the_schemas():
    from puppetops.cli.report_tasks import readme_table
    section = readme_table((REPO / "README.md").read_text(), "vars-table")
    assert section == markdown(), \
        "README.md's vars table is out of date: run `invoke readme-tables`"


def test_the_ssh_transport_uses_the_defaults_the_schema_documents():
    target = Inventory.from_dict({"targets": [{"name": "h.example.com"}]}).targets[0]
    connection = SshConnection(target, SshCredentials())
    ssh = {key: option.default for key, option in TRANSPORT_OPTIONS["ssh"].items()}
    assert (connection.port, connection.connect_timeout, connection.login_user,
            connection.host_key_check, connection.persistent_shell,
            connection.command_timeout) == (ssh["port"], ssh["connect-timeout"], ssh["user"],
                                            ssh["host-key-check"], ssh["persistent-shell"],
                                            ssh["command-timeout"])
    assert connection.known_hosts_file.endswith("/.ssh/known_hosts")
    assert None not in (ssh["port"], ssh["connect-timeout"], ssh["user"])  # all documented
