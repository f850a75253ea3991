"""Inventory v2 loading: validation (message, file and line), target forms, merge precedence."""
from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from puppetops.errors import InventoryError
from puppetops.inventory import Inventory
from puppetops.inventory.schema import TRANSPORT_OPTIONS

MARK = "#<"  # put on the line an error or warning must point at


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "inventory.yaml"
    path.write_text(textwrap.dedent(text).lstrip("\n"))
    return path


def marked_line(path: Path) -> int:
    lines = path.read_text().splitlines()
    return next(number for number, line in enumerate(lines, 1) if MARK in line)


def load(tmp_path: Path, text: str, **kwargs) -> Inventory:
    return Inventory.load(write(tmp_path, text), **kwargs)


def assert_error(tmp_path: Path, text: str, *fragments: str, strict: bool = False) -> InventoryError:
    """Loading fails with all ``fragments`` in the message, naming the file and the marked line."""
    path = write(tmp_path, text)
    with pytest.raises(InventoryError) as info:
        Inventory.load(path, strict=strict)
    error, line = info.value, marked_line(path)
    for fragment in fragments:
        assert fragment in error.reason, error.reason
    assert (error.path, error.line) == (str(path), line), str(error)
    assert str(error).startswith(f"{path}:{line}: ")
    return error


# ---------------------------------------------------------------------------------- loading
def test_empty_and_comment_only_files_are_valid(tmp_path):
    for text in ("", "# nothing yet\n"):
        inv = load(tmp_path, text)
        assert (inv.targets, inv.group_names, inv.warnings) == ([], ["all"], [])


def test_missing_file_is_an_error(tmp_path):
    with pytest.raises(InventoryError, match="not found") as info:
        Inventory.load(tmp_path / "nope.yaml")
    assert info.value.path == str(tmp_path / "nope.yaml")


def test_unreadable_path_is_an_error(tmp_path):
    with pytest.raises(InventoryError, match="Cannot read"):
        Inventory.load(tmp_path)


def test_path_and_from_dict():
    inv = Inventory.from_dict({"targets": ["a"]})
    assert inv.path == "<dict>" and [t.name for t in inv.targets] == ["a"]
    with pytest.raises(InventoryError) as info:
        Inventory.from_dict({"version": 1}, path="mine")
    assert str(info.value) == "mine: Unsupported version 1 specified in inventory (puppetops reads version 2)"


def test_version_2_accepted(tmp_path):
    assert load(tmp_path, "version: 2\ntargets: [a]\n").get("a").name == "a"


def test_plugin_hooks_accepted_without_warning(tmp_path):
    inv = load(tmp_path, """
        plugin_hooks: {puppet_library: {plugin: task}}
        groups:
          - name: g
            plugin_hooks: {}
            targets: [{name: a, plugin_hooks: {}}]
        """, strict=True)
    assert inv.warnings == [] and inv.get("a").groups == ["all", "g"]


def test_null_sections_count_as_empty(tmp_path):
    inv = load(tmp_path, """
        vars:
        config:
          ssh:
        groups:
          - name: g
            targets:
            groups:
            features:
        """)
    assert inv.group_names == ["all", "g"] and inv.targets == []


def test_yaml_anchors_and_merge_keys(tmp_path):
    inv = load(tmp_path, """
        groups:
          - name: a
            config: &common {ssh: {user: deploy, port: 2222}}
            targets: [a1]
          - name: b
            config:
              <<: *common
              transport: local
            targets: [b1]
        """)
    assert inv.get("a1").port == 2222 and inv.get("b1").transport == "local"
    assert inv.get("b1").config == {"ssh": {"user": "deploy", "port": 2222}, "transport": "local"}


# ------------------------------------------------------------------------------ validation
@pytest.mark.parametrize("text, fragments", [
    ("version: 1  #<\n", ["Unsupported version 1 specified in inventory"]),
    ("version: '2'  #<\n", ["Unsupported version '2' specified in inventory"]),
    ("nodes: [a]  #<\n", ["'nodes'", "renaming 'nodes' to 'targets'"]),
    ("groups:\n  - name: g\n    nodes: [a]  #<\n", ["Found 'nodes' in group 'g'", "'targets'"]),
    ("- a  #<\n- b\n", ["inventory must be a mapping", "got list"]),
    ("just a string  #<\n", ["inventory must be a mapping", "got string"]),
])
def test_top_level_errors(tmp_path, text, fragments):
    assert_error(tmp_path, text, *fragments)


@pytest.mark.parametrize("text, fragments", [
    ("groups:\n  - targets: [a]  #<\n", ["Group does not have a name"]),
    ("groups:\n  - name:  #<\n", ["Group name must be a string, got null"]),
    ("groups:\n  - name: 5  #<\n", ["Group name must be a string, got integer 5"]),
    ("groups:\n  - name: ''  #<\n", ["Group name must not be empty"]),
    ("groups:\n  - name: a b  #<\n", ["Illegal character ' ' in group name 'a b'"]),
    ("groups:\n  - name: a,b  #<\n", ["Illegal character ',' in group name 'a,b'"]),
    ("groups:\n  - web  #<\n", ["Group entry in group 'all' must be a mapping with a 'name' key",
                                "got string 'web'"]),
    ("groups: web  #<\n", ["Expected 'groups' in group 'all' to be a list, got string"]),
    ("groups:\n  - name: g\n    groups: {name: x}  #<\n", ["Expected 'groups' in group 'g' to be a list"]),
    ("groups:\n  - name: web\n  - name: web  #<\n", ["Tried to redefine group web (first defined at line 2)"]),
    ("groups:\n  - name: web\n    groups:\n      - name: db\n  - name: db  #<\n",
     ["Tried to redefine group db"]),
    ("groups:\n  - name: p\n    groups:\n      - name: all  #<\n", ["Tried to redefine group all"]),
])
def test_group_errors(tmp_path, text, fragments):
    assert_error(tmp_path, text, *fragments)


@pytest.mark.parametrize("text, fragments", [
    ("targets: {a: 1}  #<\n", ["Expected 'targets' in group 'all' to be a list, got mapping"]),
    ("targets:\n  - 123  #<\n", ["Target entry in group 'all' must be a string or a mapping",
                                "got integer 123"]),
    ("targets:\n  - [a]  #<\n", ["Target entry in group 'all' must be a string or a mapping"]),
    ("targets:\n  - {vars: {}}  #<\n", ["No name or uri for target"]),
    ("targets:\n  - name: 123  #<\n", ["Target name must be a string, got integer 123"]),
    ("targets:\n  - name: héllo  #<\n", ["Target name must be ASCII characters"]),
    ("targets:\n  - web 1  #<\n", ["Illegal character ' ' in target name 'web 1'"]),
    ("targets:\n  - uri: z://foo  #<\n", ["Unknown transport z found for z://foo"]),
    ("targets:\n  - name: a\n    uri: 'host:notaport'  #<\n", ["Invalid target uri host:notaport"]),
    ("targets:\n  - name: a\n    uri: 7  #<\n", ["Target uri must be a string, got integer 7"]),
    ("targets:\n  - 'ssh://root:hunter2@h'  #<\n", ["contains a password",
                                                     "secrets are not read from the inventory"]),
    ("targets:\n  - {_plugin: puppetdb, query: x}  #<\n", ["Inventory plugins are not supported"]),
    ("groups:\n  - name: g\n    targets:\n      - z://foo  #<\n", ["Unknown transport z found for z://foo"]),
])
def test_target_entry_errors(tmp_path, text, fragments):
    assert_error(tmp_path, text, *fragments)


def test_uri_password_is_not_echoed(tmp_path):
    error = assert_error(tmp_path, "targets:\n  - 'ssh://root:hunter2@h'  #<\n", "password")
    assert "hunter2" not in str(error)


@pytest.mark.parametrize("text, fragments", [
    ("targets:\n  - {name: a, alias: 5}  #<\n",
     ["Alias entry on target 'a' must be a string or a list of strings, got integer 5"]),
    ("targets:\n  - name: a\n    alias: {x: 1}  #<\n", ["Alias entry on target 'a'", "got mapping"]),
    ("targets:\n  - name: a\n    alias:\n      - ok\n      - b c  #<\n", ["Illegal character ' ' in alias 'b c'"]),
    ("targets:\n  - {name: a, alias: [x, 1]}  #<\n", ["Alias entry on target 'a'", "got list"]),
    ("targets:\n  - {name: a, alias: x}\n  - {name: b, alias: x}  #<\n",
     ["Alias x refers to multiple targets: a and b"]),
    ("targets:\n  - {name: a, alias: b}  #<\n  - {name: b}\n", ["Target name b conflicts with alias of the same name"]),
    ("targets:\n  - {name: a, alias: a}  #<\n", ["Target name a conflicts with alias of the same name"]),
    ("groups:\n  - name: web\ntargets:\n  - web  #<\n", ["Group web conflicts with target of the same name"]),
    ("targets:\n  - web\ngroups:\n  - name: web  #<\n", ["Group web conflicts with target of the same name"]),
    ("targets:\n  - {name: a, alias: web}\ngroups:\n  - name: web  #<\n",
     ["Group web conflicts with alias of the same name"]),
    ("targets:\n  - all  #<\n", ["Group all conflicts with target of the same name"]),
])
def test_alias_and_name_clash_errors(tmp_path, text, fragments):
    assert_error(tmp_path, text, *fragments)


@pytest.mark.parametrize("key, value, expected", [
    ("vars", "[1, 2]", "Expected 'vars' in group 'g' to be a mapping, got list"),
    ("facts", "linux", "Expected 'facts' in group 'g' to be a mapping, got string 'linux'"),
    ("config", "[ssh]", "Expected 'config' in group 'g' to be a mapping, got list"),
    ("features", "puppet-agent", "Expected 'features' in group 'g' to be a list of strings, got string"),
    ("features", "{a: 1}", "Expected 'features' in group 'g' to be a list of strings, got mapping"),
])
def test_data_type_errors(tmp_path, key, value, expected):
    assert_error(tmp_path, f"groups:\n  - name: g\n    {key}: {value}  #<\n", expected)


def test_data_type_errors_on_targets(tmp_path):
    assert_error(tmp_path, "targets:\n  - name: a\n    vars: 3  #<\n",
                 "Expected 'vars' in target 'a' to be a mapping, got integer 3")


def test_features_error_points_at_the_bad_item(tmp_path):
    assert_error(tmp_path, "features:\n  - puppet-agent\n  - 12  #<\n",
                 "Expected 'features' in group 'all' to be a list of strings")


@pytest.mark.parametrize("section, key, value, expected", [
    ("ssh", "port", "'22'", "expected an integer between 1 and 65535, got string '22'"),
    ("ssh", "port", "70000", "expected an integer between 1 and 65535, got integer 70000"),
    ("ssh", "port", "true", "got boolean True"),
    ("ssh", "user", "5", "'ssh.user'"),
    ("ssh", "host", "[a]", "expected a string, got list"),
    ("ssh", "private-key", "~", "expected a string, got null"),
    ("ssh", "host-key-check", "'false'", "expected a boolean (true or false), got string 'false'"),
    ("ssh", "known-hosts-file", "1", "expected a string"),
    ("ssh", "connect-timeout", "0", "expected a number of seconds greater than 0, got integer 0"),
    ("ssh", "connect-timeout", "ten", "got string 'ten'"),
    ("ssh", "attempts", "0", "expected an integer of at least 1, got integer 0"),
    ("ssh", "attempts", "1.5", "expected an integer of at least 1, got number 1.5"),
    ("ssh", "command-timeout", "-1", "expected a number of seconds greater than 0"),
    ("ssh", "persistent-shell", "'no'", "expected a boolean (true or false), got string 'no'"),
    ("ssh", "run-as", "0", "expected a string"),
    ("local", "run-as", "[root]", "'local.run-as'"),
    ("local", "command-timeout", "'600'", "got string '600'"),
])
def test_transport_config_type_errors(tmp_path, section, key, value, expected):
    text = f"groups:\n  - name: g\n    config:\n      {section}:\n        {key}: {value}  #<\n"
    error = assert_error(tmp_path, text, f"config option '{section}.{key}' in group 'g'", expected)
    assert error.reason.startswith("Invalid value for")


def test_transport_must_be_one_of_bolts(tmp_path):
    assert_error(tmp_path, "config:\n  transport: wimrm  #<\n",
                 "config option 'transport' in group 'all': expected one of 'ssh', 'local', "
                 "'winrm', 'docker', 'podman', 'pcp', 'remote', 'jail', 'lxd', got string 'wimrm'")


def test_transport_section_must_be_a_mapping(tmp_path):
    assert_error(tmp_path, "targets:\n  - name: a\n    config:\n      ssh: [user]  #<\n",
                 "Expected 'config.ssh' in target 'a' to be a mapping, got list")


def test_literal_sudo_password_is_refused_without_echoing_it(tmp_path):
    error = assert_error(tmp_path, "config:\n  ssh:\n    sudo-password: s3cret  #<\n",
                         "config option 'ssh.sudo-password'",
                         "Secrets are not read from the inventory file",
                         "{_plugin: env_var, var: SUDO_PASSWORD}")
    assert "s3cret" not in str(error)


@pytest.mark.parametrize("value", ["{_plugin: prompt, message: pw}", "{_plugin: env_var}",
                                   "{_plugin: env_var, var: ''}", "{_plugin: env_var, var: X, default: y}"])
def test_sudo_password_only_as_env_var_reference(tmp_path, value):
    assert_error(tmp_path, f"config:\n  local:\n    sudo-password: {value}  #<\n",
                 "'local.sudo-password'", "{_plugin: env_var, var: NAME}")


def test_sudo_password_reference_is_kept_unresolved(tmp_path, monkeypatch):
    monkeypatch.setenv("SUDO_PW", "real-secret")
    inv = load(tmp_path, """
        config:
          ssh:
            sudo-password: {_plugin: env_var, var: SUDO_PW}
        targets: [a]
        """, strict=True)
    assert inv.get("a").transport_config["sudo-password"] == {"_plugin": "env_var", "var": "SUDO_PW"}
    assert "real-secret" not in repr(inv.to_dict())


def test_yaml_syntax_error_has_its_line(tmp_path):
    assert_error(tmp_path, "groups:\n  - name: a\n   - name: b  #<\n", "Invalid YAML")


def test_duplicate_yaml_key_is_an_error(tmp_path):
    assert_error(tmp_path, "groups: []\ntargets: [a]\ngroups: []  #<\n",
                 "Invalid YAML", "duplicate key 'groups' (first at line 1)")


def test_invalid_bytes_are_an_inventory_error(tmp_path):
    path = tmp_path / "inventory.yaml"
    path.write_bytes(b"targets: [\xff\xfe\x00]\n")
    with pytest.raises(InventoryError, match="Invalid YAML"):
        Inventory.load(path)


@pytest.mark.parametrize("text", [
    "[]", "- name: a", "42", "groups: [[]]", "groups: [{name: ~}]", "groups: [{name: [a]}]",
    "groups: [{name: {a: 1}}]", "targets: [{name: ~}]", "targets: [{name: 1.5}]", "targets: [~]",
    "targets: [{uri: ~, name: ~}]", "targets: [{name: a, alias: ~, vars: ~, config: {ssh: 5}}]",
    "config: {ssh: {port: {}}}", "{? [a, b] : c}", "{1: 2, targets: [a, {name: b, uri: ''}]}",
    "targets: [{uri: 'ssh://'}]", "targets: ['user@']", "targets: ['h:0']", "targets: ['h/path']",
    "vars: !!set {a}", "groups: [{name: g, targets: [{name: x, alias: [[]]}]}]",
    "&a [*a]", "version: ~", "version: 2.0", "targets: [{name: a, uri: 'ssh://[::1'}]",
    "targets: !!binary aGVsbG8=", "groups:\n- name: a\n  groups:\n  - &x {name: b}\n  - *x",
])
def test_nasty_inputs_raise_only_inventory_error(tmp_path, text):
    with pytest.raises(InventoryError):
        load(tmp_path, text + "\n")


def test_absurdly_deep_nesting_is_an_inventory_error():
    data: dict = {"name": "g0"}
    root = {"groups": [data]}
    for depth in range(1, 3000):
        child = {"name": f"g{depth}"}
        data["groups"] = [child]
        data = child
    with pytest.raises(InventoryError, match="nested too deeply"):
        Inventory.from_dict(root)


# -------------------------------------------------------------------------------- warnings
def test_unknown_keys_are_warnings_with_file_and_line(tmp_path):
    path = write(tmp_path, """
        colour: blue
        name: mine
        groups:
          - name: web
            target: [a]
            targets:
              - name: a
                vars: {}
                flavour: x
            config:
              wimrm: {}
              ssh:
                user: x
                usr: y
        """)
    inv = Inventory.load(path)
    assert inv.warnings == [
        f"{path}:1: Unknown option 'colour' in group 'all'",
        f"{path}:2: Ignoring 'name' at the top level: the top level is always the 'all' group",
        f"{path}:5: Unknown option 'target' in group 'web' (did you mean 'targets'?)",
        f"{path}:11: Unknown option 'wimrm' in config of group 'web' (did you mean 'winrm'?)",
        f"{path}:14: Unknown option 'usr' in config.ssh of group 'web' (did you mean 'user'?)",
        f"{path}:9: Unknown option 'flavour' in target 'a'",
    ]
    assert inv.get("a").transport_config == {"user": "x", "usr": "y"}  # kept, just unknown


@pytest.mark.parametrize("text, fragment", [
    ("colour: blue  #<\n", "Unknown option 'colour' in group 'all'"),
    ("name: mine  #<\n", "Ignoring 'name' at the top level"),
    ("groups:\n  - name: g\n    target: []  #<\n", "Unknown option 'target' in group 'g'"),
    ("targets:\n  - name: a\n    flavour: x  #<\n", "Unknown option 'flavour' in target 'a'"),
    ("config:\n  shh: {}  #<\n", "Unknown option 'shh' in config of group 'all'"),
    ("config:\n  local:\n    port: 22  #<\n", "Unknown option 'port' in config.local of group 'all'"),
])
def test_strict_mode_turns_warnings_into_errors(tmp_path, text, fragment):
    assert load(tmp_path, text).warnings  # a warning without strict
    assert_error(tmp_path, text, fragment, strict=True)


def test_every_documented_transport_option_is_in_the_schema():
    assert set(TRANSPORT_OPTIONS["ssh"]) == {
        "user", "port", "host", "private-key", "host-key-check", "known-hosts-file", "connect-timeout",
        "run-as", "sudo-password", "attempts", "command-timeout", "persistent-shell"}
    assert set(TRANSPORT_OPTIONS["local"]) == {"run-as", "sudo-password", "command-timeout"}
    assert all(option.description for options in TRANSPORT_OPTIONS.values() for option in options.values())


# ---------------------------------------------------------------------------- target forms
def test_target_forms(tmp_path):
    inv = load(tmp_path, """
        config:
          ssh:
            host: fallback.example
        targets:
          - plain.example
          - uri: ssh://deploy@uri-only.example:2222
          - name: name-only
          - name: named
            uri: 10.0.0.5
          - deploy@user-at.example
          - host-port.example:2200
          - local://box
          - localhost
        """)
    got = {t.name: (t.uri, t.transport, t.host, t.port, t.user) for t in inv.targets}
    assert got == {
        "plain.example": ("plain.example", "ssh", "plain.example", None, None),
        "ssh://deploy@uri-only.example:2222": ("ssh://deploy@uri-only.example:2222", "ssh",
                                               "uri-only.example", 2222, "deploy"),
        "name-only": (None, "ssh", "fallback.example", None, None),
        "named": ("10.0.0.5", "ssh", "10.0.0.5", None, None),
        "deploy@user-at.example": ("deploy@user-at.example", "ssh", "user-at.example", None, "deploy"),
        "host-port.example:2200": ("host-port.example:2200", "ssh", "host-port.example", 2200, None),
        "local://box": ("local://box", "local", "box", None, None),
        "localhost": ("localhost", "local", "localhost", None, None),
    }


def test_name_only_target_without_config_host_uses_its_name(tmp_path):
    assert load(tmp_path, "targets: [{name: web1}]").get("web1").host == "web1"


def test_string_entry_refers_to_a_target_defined_anywhere(tmp_path):
    inv = load(tmp_path, """
        groups:
          - name: early
            targets: [web1]
          - name: late
            targets:
              - name: web1
                uri: 10.0.0.1
                vars: {role: web}
          - name: by-alias
            targets: [w1]
        targets:
          - {name: web2, alias: [w1]}
        """)
    assert [t.name for t in inv.targets] == ["web1", "web2"]
    web1 = inv.get("web1")
    assert (web1.uri, web1.vars, web1.groups) == ("10.0.0.1", {"role": "web"}, ["all", "early", "late"])
    assert inv.get("web2").groups == ["all", "by-alias"]


def test_same_target_in_several_groups_is_one_target(tmp_path):
    inv = load(tmp_path, """
        groups:
          - name: puppet
            groups:
              - name: compilers
                targets: [c1]
          - name: monitored
            targets: [c1]
        """)
    assert len(inv.targets) == 1
    assert inv.get("c1").groups == ["all", "puppet", "compilers", "monitored"]


def test_aliases_collect_from_every_definition(tmp_path):
    inv = load(tmp_path, """
        groups:
          - name: a
            targets: [{name: t, alias: one}]
          - name: b
            targets: [{name: t, alias: [two, one]}]
        """)
    assert inv.get("t").aliases == ["one", "two"]
    assert inv.get("two") is inv.get("t")


def test_duplicate_definition_in_one_group_first_wins(tmp_path):
    inv = load(tmp_path, """
        targets:
          - {name: t, uri: first.example, vars: {v: 1}, alias: first}
          - {name: t, uri: second.example, vars: {v: 2, w: 2}, alias: second}
        """)
    target = inv.get("t")
    assert (target.uri, target.vars, target.aliases) == ("first.example", {"v": 1}, ["first"])


# ------------------------------------------------------------------------------ precedence
def test_child_beats_parent_and_all(tmp_path):
    inv = load(tmp_path, """
        vars: {level: all, only_all: 1}
        groups:
          - name: parent
            vars: {level: parent, only_parent: 1}
            groups:
              - name: child
                vars: {level: child}
                targets: [t]
        """)
    assert inv.get("t").vars == {"level": "child", "only_all": 1, "only_parent": 1}


def test_first_sibling_branch_wins(tmp_path):
    inv = load(tmp_path, """
        groups:
          - name: first
            vars: {v: first}
            targets: [t]
          - name: second
            vars: {v: second}
            groups:
              - name: deep
                vars: {v: deep}
                targets: [t]
        """)
    assert inv.get("t").vars == {"v": "first"}  # a deeper group in a later branch still loses


def test_first_child_wins_inside_one_parent(tmp_path):
    inv = load(tmp_path, """
        groups:
          - name: p
            vars: {v: p}
            groups:
              - {name: c1, vars: {v: c1}, targets: [t]}
              - {name: c2, vars: {v: c2}, targets: [t]}
          - name: later
            vars: {v: later}
            targets: [t]
        """)
    assert inv.get("t").vars == {"v": "c1"}


def test_target_data_beats_group_data(tmp_path):
    inv = load(tmp_path, """
        groups:
          - name: g
            vars: {v: group}
            config: {ssh: {user: group, port: 22}}
            targets:
              - name: t
                vars: {v: target}
                config: {ssh: {user: target}}
        """)
    target = inv.get("t")
    assert target.vars == {"v": "target"} and (target.user, target.port) == ("target", 22)


def test_target_definitions_follow_group_order(tmp_path):
    inv = load(tmp_path, """
        targets:
          - {name: t, vars: {v: at-all, a: 1}}
        groups:
          - name: first
            targets: [{name: t, vars: {v: first}}]
          - name: second
            targets: [{name: t, vars: {v: second, b: 2}}]
        """)
    # a definition in a child group beats the one at the parent; the first sibling beats the second
    assert inv.get("t").vars == {"v": "first", "a": 1, "b": 2}


def test_target_level_group_data_never_beats_target_data(tmp_path):
    inv = load(tmp_path, """
        targets:
          - {name: t, vars: {v: target-at-top}}
        groups:
          - {name: g, vars: {v: group}, targets: [t]}
        """)
    assert inv.get("t").vars == {"v": "target-at-top"}


def test_vars_merge_shallow_config_and_facts_deep(tmp_path):
    inv = load(tmp_path, """
        vars: {settings: {a: 1, b: 2}, keep: yes}
        facts: {os: {family: RedHat, release: {major: '8'}}}
        config: {ssh: {user: deploy, port: 2222}, transport: ssh}
        groups:
          - name: g
            vars: {settings: {a: 10}}
            facts: {os: {release: {minor: '9'}}}
            config: {ssh: {port: 22}}
            targets: [t]
        """)
    target = inv.get("t")
    assert target.vars == {"settings": {"a": 10}, "keep": True}
    assert target.facts == {"os": {"family": "RedHat", "release": {"major": "8", "minor": "9"}}}
    assert target.config == {"ssh": {"user": "deploy", "port": 22}, "transport": "ssh"}


def test_features_union(tmp_path):
    inv = load(tmp_path, """
        features: [puppet-agent]
        groups:
          - name: g
            features: [bash]
            targets: [{name: t, features: [powershell, bash]}]
        """)
    assert inv.get("t").features == {"puppet-agent", "bash", "powershell"}


def test_transport_choice(tmp_path):
    inv = load(tmp_path, """
        groups:
          - name: locals
            config: {transport: local}
            targets:
              - in-local-group
              - ssh://by-scheme
              - {name: target-says-ssh, config: {transport: ssh}}
        targets:
          - localhost
          - {name: localhost-over-ssh, uri: localhost}
          - plain
        """)
    got = {t.name: t.transport for t in inv.targets}
    assert got == {"in-local-group": "local", "ssh://by-scheme": "ssh", "target-says-ssh": "ssh",
                   "localhost": "local", "localhost-over-ssh": "ssh", "plain": "ssh"}


def test_localhost_is_local_whatever_its_groups_say_unless_it_says_otherwise(tmp_path):
    """As in Bolt: the localhost default sits at the target's own level, under its URI scheme
    and its own config, above every group's config."""
    inv = load(tmp_path, """
        config: {transport: ssh, ssh: {user: root}}
        groups:
          - name: servers
            config: {transport: ssh}
            targets: [localhost, web1]
        """)
    localhost = inv.get("localhost")
    assert (localhost.transport, localhost.config["transport"]) == ("local", "local")
    assert inv.to_dict([localhost])["targets"]["localhost"]["transport"] == "local"
    assert inv.get("web1").transport == "ssh"
    own = load(tmp_path, """
        config: {transport: local}
        targets:
          - {name: localhost, config: {transport: ssh}}
        """)
    assert own.get("localhost").transport == "ssh"
    scheme = load(tmp_path, "targets:\n  - {name: localhost, uri: 'ssh://127.0.0.1:2222'}\n")
    assert scheme.get("localhost").transport == "ssh"


@pytest.mark.reliability(fault="Bolt inventory that also lists Windows hosts and containers",
                         outcome="inventory loads; those targets listed with their transport")
def test_a_bolt_inventory_with_windows_hosts_and_containers_loads(tmp_path):
    inv = load(tmp_path, """
        config:
          transport: ssh
          ssh: {user: root}
          winrm: {user: Administrator, password: Sup3r-s3cret, ssl: false}
          docker: {service-url: 'unix:///var/run/docker.sock'}
        groups:
          - name: linux
            targets: [web1]
          - name: windows
            config: {transport: winrm}
            targets: [win1, 'winrm://admin@win2.example:5986']
          - name: containers
            targets:
              - docker://c1
              - {name: pod1, uri: 'podman://pod1'}
              - {name: agentless, config: {transport: pcp, pcp: {task-environment: production}}}
              - {name: r, config: {transport: remote}}
              - jail://j1
              - lxd://l1
        """, strict=True)
    got = {t.name: (t.transport, t.user, t.host, t.port) for t in inv.targets}
    assert got == {
        "web1": ("ssh", "root", "web1", None),
        "win1": ("winrm", "Administrator", "win1", None),
        "winrm://admin@win2.example:5986": ("winrm", "admin", "win2.example", 5986),
        "docker://c1": ("docker", None, "c1", None), "pod1": ("podman", None, "pod1", None),
        "agentless": ("pcp", None, "agentless", None), "r": ("remote", None, "r", None),
        "jail://j1": ("jail", None, "j1", None), "lxd://l1": ("lxd", None, "l1", None),
    }
    assert inv.warnings == []
    shown = json.dumps(inv.to_dict())
    assert "Sup3r-s3cret" not in shown and inv.get("win1").transport_config["ssl"] is False


def test_a_section_of_another_bolt_transport_must_still_be_a_mapping(tmp_path):
    assert_error(tmp_path, "config:\n  winrm: [user]  #<\n",
                 "Expected 'config.winrm' in group 'all' to be a mapping, got list")


def test_uri_beats_config_for_user_host_port(tmp_path):
    inv = load(tmp_path, """
        config: {ssh: {user: cfg, port: 2222, host: cfg.example}}
        targets:
          - {name: full, uri: 'ssh://uri@uri.example:22'}
          - {name: partial, uri: uri.example}
          - {name: none}
        """)
    got = {t.name: (t.user, t.host, t.port) for t in inv.targets}
    assert got == {"full": ("uri", "uri.example", 22), "partial": ("cfg", "uri.example", 2222),
                   "none": ("cfg", "cfg.example", 2222)}


def test_targets_do_not_share_mutable_data(tmp_path):
    inv = load(tmp_path, "vars: {list: [1]}\nconfig: {ssh: {user: u}}\ntargets: [a, b]\n")
    a, b = inv.targets
    a.vars["list"].append(2)
    a.config["ssh"]["user"] = "changed"
    assert b.vars == {"list": [1]} and b.config == {"ssh": {"user": "u"}}
    assert type(a.vars["list"]) is list and type(a.config) is dict  # no YAML line types leak


# ------------------------------------------------------------------------- describe / size
def test_group_names_and_definition_order(tmp_path):
    inv = load(tmp_path, """
        groups:
          - name: web
            targets: [w1, w2]
            groups: [{name: edge, targets: [e1]}]
          - {name: empty}
        targets: [w2, top]
        """)
    assert inv.group_names == ["all", "web", "edge", "empty"]
    assert [t.name for t in inv.targets] == ["w1", "w2", "e1", "top"]


def test_to_dict_shape(tmp_path):
    inv = load(tmp_path, """
        groups:
          - name: g
            config: {ssh: {user: deploy}}
            facts: {os: linux}
            targets: [{name: a, uri: 'a.example:2222', vars: {x: 1}}]
        targets: [b]
        """)
    assert inv.to_dict() == {"targets": {
        "a": {"uri": "a.example:2222", "host": "a.example", "port": 2222, "user": "deploy", "transport": "ssh",
              "groups": ["all", "g"], "vars": {"x": 1}, "facts": {"os": "linux"},
              "config": {"ssh": {"user": "deploy"}}},
        "b": {"uri": "b", "host": "b", "port": None, "user": None, "transport": "ssh", "groups": ["all"],
              "vars": {}, "facts": {}, "config": {}},
    }}
    assert list(inv.to_dict([inv.get("b")])["targets"]) == ["b"]


def test_thousand_targets_resolve(tmp_path):
    lines = ["config: {ssh: {user: deploy}}", "groups:"]
    for g in range(10):
        lines += [f"  - name: g{g}", f"    vars: {{group: g{g}}}",
                  f"    groups: [{{name: sub{g}, vars: {{sub: {g}}}, targets: [h{g * 100}]}}]", "    targets:"]
        lines += [f"      - {{name: h{i}, uri: 'h{i}.example:{2000 + i}', alias: a{i}}}"
                  for i in range(g * 100, g * 100 + 100)]
    lines += ["targets: [h0, h999]"]
    path = tmp_path / "big.yaml"
    path.write_text("\n".join(lines) + "\n")
    inv = Inventory.load(path, strict=True)
    assert len(inv.targets) == 1000 and len(inv.group_names) == 21
    h500 = inv.get("a500")
    assert (h500.name, h500.port, h500.user, h500.vars) == ("h500", 2500, "deploy", {"group": "g5", "sub": 5})
    assert inv.get("h999").groups == ["all", "g9"] and inv.get("h999").vars == {"group": "g9"}
    assert [t.name for t in inv.targets[:3]] == ["h0", "h1", "h2"]


def test_a_targets_connection_settings_come_from_its_uri_its_config_or_the_schemas_defaults():
    """Every reader of port, user, known_hosts and host-key checking (the SSH transport, the
    run lock, pinned known_hosts, the webhook's inventory) asks ``target_setting``, so none
    has defaults of its own."""
    from puppetops.inventory.schema import target_setting
    inventory = Inventory.from_dict({
        "config": {"ssh": {"user": "deploy", "host-key-check": False}},
        "targets": ["bare", {"name": "uri", "uri": "ssh://ops@uri:2222"},
                    {"name": "winbox", "config": {"transport": "winrm"}}]})
    bare, uri, winbox = (inventory.get(n) for n in ("bare", "uri", "winbox"))
    ssh = TRANSPORT_OPTIONS["ssh"]
    assert [target_setting(bare, k) for k in ("port", "user", "host-key-check", "known-hosts-file")] \
        == [ssh["port"].default, "deploy", False, ssh["known-hosts-file"].default]
    assert (target_setting(uri, "port"), target_setting(uri, "user")) == (2222, "ops")
    assert target_setting(winbox, "port") is None  # a transport whose options Bolt checks


def test_strict_mode_reports_every_warning_at_once(tmp_path):
    error = assert_error(tmp_path, """
        groups:
          - name: web
            targets: [a]
            colour: blue  #<
        targets:
          - name: a
            shape: round
        """, "Unknown option 'colour' in group 'web'", strict=True)
    lines = str(error).splitlines()
    assert len(lines) == 2 and lines[1].endswith(":7: Unknown option 'shape' in target 'a'")
    assert all(line.startswith(str(tmp_path)) for line in lines)
