"""PlanTester: unit-testing plans without hosts, as users of the library would."""
from __future__ import annotations

import re

import pytest

from puppetops import PlanFailure
from puppetops.steps import FileContent
from puppetops.testing.plans import PlanTester

FACTS_OUTPUT = """os_id=debian
os_version=12
os_name=Debian GNU/Linux 12 (bookworm)
hostname=web1
fqdn=web1.example.com
init=sysv
layout=aio
pkg:puppet-agent=8.10.0-1bookworm
pkg:git=1:2.39.5-0+deb12u1
proc:/opt/puppetlabs/puppet/bin/ruby /opt/puppetlabs/puppet/bin/puppet agent
"""


def test_the_facts_plan_parses_what_the_target_reports():
    tester = PlanTester({"targets": ["web1", "web2"]})
    tester.on(re.compile("puppetops-facts-script"), stdout=FACTS_OUTPUT)
    rs = tester.run_plan("facts", targets="all")
    facts = rs.find("web1").value
    assert facts["puppet_layout"] == "aio" and facts["init"] == "sysv"
    assert facts["packages"] == {"puppet-agent": "8.10.0-1bookworm", "git": "1:2.39.5-0+deb12u1"}
    assert facts["services"]["puppet_agent"] and not facts["services"]["puppetserver"]
    assert tester.run.inventory.get("web2").facts["fqdn"] == "web1.example.com"


def test_unexpected_commands_fail_the_step_in_strict_mode():
    tester = PlanTester({"targets": ["web1"]})
    with pytest.raises(PlanFailure) as caught:
        tester.run_plan("facts", targets="all")
    assert "unexpected command" in caught.value.results[0].message


def test_uploads_and_commands_are_recorded():
    tester = PlanTester({"targets": ["web1"]}, strict=False)
    tester.on(re.compile("sha256sum"), stdout="")  # file absent → create
    rs = tester.run.step(FileContent("/etc/motd", "hi\n"), "all", catch_errors=True)
    assert tester.uploads("web1") == {"/etc/motd": b"hi\n"}
    assert any(c.startswith("mkdir -p") for c in tester.commands("web1"))
    assert rs[0].status == "failed"  # verify re-checks, and the canned answer still says absent


def test_the_package_exports_each_plan_as_its_function():
    from puppetops.plans import facts
    from puppetops.plans.facts import facts as from_its_module
    assert facts is from_its_module and facts.plan_name == "facts"
    tester = PlanTester({"targets": ["web1"]})
    tester.on(re.compile("puppetops-facts-script"), stdout=FACTS_OUTPUT)
    assert facts(tester.run, targets="all").find("web1").value["fqdn"] == "web1.example.com"


def test_every_installed_plan_is_exported_by_the_package():
    import puppetops.plans
    from puppetops.plan_registry import discover
    installed = {name: info for name, info in discover().items()
                 if info.module.startswith("puppetops.plans.")}
    assert installed and sorted(puppetops.plans.__all__) == sorted(installed)
    assert all(getattr(puppetops.plans, name) is info.fn for name, info in installed.items())
