"""Target selection: names, aliases, groups, globs, URIs, and helpful errors for unknown names."""
from __future__ import annotations

import pytest

from puppetops.errors import TargetNotFound, UsageError
from puppetops.inventory import Inventory

INVENTORY = {
    "config": {"ssh": {"user": "deploy", "port": 2222}},
    "vars": {"site": "lab"},
    "groups": [
        {"name": "puppet", "groups": [
            {"name": "primary", "targets": [{"name": "puppet1", "uri": "10.0.0.1", "alias": "ca"}]},
            {"name": "compilers", "targets": ["compiler1", "compiler2", {"name": "compiler3", "alias": ["c3"]}]},
        ]},
        {"name": "lb", "targets": [{"name": "haproxy1", "alias": "balancer"}]},
        {"name": "empty"},
    ],
    "targets": ["compiler2", "db1"],
}


@pytest.fixture
def inv() -> Inventory:
    return Inventory.from_dict(INVENTORY)


def names(targets) -> list[str]:
    return [t.name for t in targets]


def test_none_selects_all_in_definition_order(inv):
    assert names(inv.select(None)) == ["puppet1", "compiler1", "compiler2", "compiler3", "haproxy1", "db1"]
    assert inv.select("all") == inv.select(None) == inv.targets


def test_names_aliases_and_groups(inv):
    assert names(inv.select("db1")) == ["db1"]
    assert names(inv.select("ca")) == ["puppet1"]
    assert names(inv.select("compilers")) == ["compiler1", "compiler2", "compiler3"]
    assert names(inv.select("puppet")) == ["puppet1", "compiler1", "compiler2", "compiler3"]  # nested
    assert inv.select("empty") == []


def test_comma_string_and_list_dedupe_in_first_seen_order(inv):
    assert names(inv.select("db1, compilers,c3,balancer,compiler1")) == [
        "db1", "compiler1", "compiler2", "compiler3", "haproxy1"]
    assert names(inv.select(["lb", "ca,db1", "haproxy1"])) == ["haproxy1", "puppet1", "db1"]
    assert inv.select("") == [] and inv.select([]) == []


@pytest.mark.parametrize("pattern, expected", [
    ("compiler*", ["compiler1", "compiler2", "compiler3"]),
    ("compiler[13]", ["compiler1", "compiler3"]),
    ("?3", ["compiler3"]),                                  # alias c3
    ("bal*", ["haproxy1"]),                                 # alias balancer
    ("pri*", ["puppet1"]),                                  # group primary
    ("*1", ["puppet1", "compiler1", "haproxy1", "db1"]),    # names, and group names never end in 1
    ("p*", ["puppet1", "compiler1", "compiler2", "compiler3"]),  # puppet1 + groups puppet, primary
])
def test_globs_over_names_aliases_and_groups(inv, pattern, expected):
    assert names(inv.select(pattern)) == expected


def test_glob_without_matches_is_an_error(inv):
    with pytest.raises(TargetNotFound, match=r"^Found 0 targets matching wildcard pattern web\*$"):
        inv.select("db1,web*")
    with pytest.raises(TargetNotFound, match="Found 0 targets matching wildcard pattern empt?"):
        inv.select("empt?")  # matches only a group that has no targets


def test_unknown_name_suggests_close_matches(inv):
    with pytest.raises(TargetNotFound) as info:
        inv.select("compilr1")
    assert str(info.value).startswith("Unknown target or group 'compilr1'. Did you mean: compiler1")
    with pytest.raises(TargetNotFound, match="Did you mean: compilers"):
        inv.select("compilerz")
    with pytest.raises(TargetNotFound, match=r"^Unknown target or group 'zzz'\.$"):
        inv.select(["db1", "zzz"])


def test_get_by_name_or_alias(inv):
    assert inv.get("compiler3") is inv.get("c3")
    assert inv.get("balancer").name == "haproxy1"
    with pytest.raises(TargetNotFound, match="Unknown target or group 'haproxy'. Did you mean: haproxy1"):
        inv.get("haproxy")
    with pytest.raises(TargetNotFound):
        inv.get("compilers")  # a group is not a target


def test_adhoc_uri_targets_get_all_group_data(inv):
    root, plain = inv.select("ssh://root@10.9.9.9:22,admin@10.9.9.8")
    assert (root.name, root.uri, root.user, root.host, root.port) == (
        "ssh://root@10.9.9.9:22", "ssh://root@10.9.9.9:22", "root", "10.9.9.9", 22)
    assert (plain.user, plain.host, plain.port) == ("admin", "10.9.9.8", 2222)  # port from config
    assert plain.vars == {"site": "lab"} and plain.groups == ["all"]
    assert inv.select("local://box")[0].transport == "local"
    assert len(inv.targets) == 6  # ad-hoc targets are not added to the inventory


def test_adhoc_uri_that_is_in_the_inventory_is_the_inventory_target():
    inv = Inventory.from_dict({"targets": [{"name": "deploy@h", "vars": {"x": 1}}]})
    assert inv.select("deploy@h")[0].vars == {"x": 1}


def test_bad_adhoc_uri_is_a_usage_error(inv):
    with pytest.raises(UsageError, match="Unknown transport z found for z://h"):
        inv.select("z://h")


def test_adhoc_uri_of_another_bolt_transport_is_a_target_of_that_transport(inv):
    (target,) = inv.select("winrm://Administrator@h:5986")
    assert (target.transport, target.user, target.host, target.port) == (
        "winrm", "Administrator", "h", 5986)


def test_selected_targets_are_the_inventory_objects(inv):
    assert inv.select("db1")[0] is inv.get("db1")
