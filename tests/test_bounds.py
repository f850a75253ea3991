"""puppetops.bounds: one declaration and one check of each bounded number (counts, seconds,
percentages, ports, file modes), the same words wherever the value comes from."""
from __future__ import annotations

import pytest

from puppetops import bounds
from puppetops.cli.options import run_params
from puppetops.errors import InventoryError, UsageError
from puppetops.executor import batches
from puppetops.inventory import Inventory
from puppetops.params import FileMode, param
from puppetops.webhook import config as settings


def test_a_count_is_refused_with_the_same_words_from_the_inventory_the_webhook_config_and_the_command_line(tmp_path):
    said = "expected an integer of at least 1, got"
    with pytest.raises(InventoryError) as inventory:
        Inventory.from_dict({"config": {"ssh": {"attempts": 0}}, "targets": ["a"]})
    assert f"'ssh.attempts'" in str(inventory.value) and f"{said} integer 0" in str(inventory.value)
    path = tmp_path / "webhook.yaml"
    path.write_text("allow_unsigned: true\nworkers: 0\n")
    with pytest.raises(UsageError) as webhook:
        settings.load(str(path), environ={})
    assert str(webhook.value) == f"{path}: workers: {said} 0"
    concurrency = next(p for p in run_params() if p.name == "concurrency")
    with pytest.raises(UsageError) as command_line:
        concurrency.read("0", "--concurrency")
    assert str(command_line.value) == f"--concurrency: {said} '0'"


@pytest.mark.parametrize("value", [0, -1, 1.5, True, "2", float("nan")])
def test_a_count_is_a_whole_number_of_at_least_one_and_nothing_else(value):
    assert not bounds.COUNT.accepts(value)
    with pytest.raises(UsageError, match=r"^batch_size: expected an integer of at least 1, got "):
        bounds.COUNT.check(value, "batch_size")


@pytest.mark.parametrize("value, ok", [(0.001, True), (600, True), (0, False), (-1, False),
                                       (float("inf"), False), (False, False), ("5", False)])
def test_seconds_are_a_finite_number_above_zero(value, ok):
    assert bounds.SECONDS.accepts(value) is ok


def test_the_webhook_stop_grace_is_whole_seconds_from_zero_in_its_file_and_on_its_command_line(tmp_path):
    assert settings.STOP_GRACE.parse("0", "--stop-grace") == 0
    for text in ("-1", "1.5", "soon", ""):
        with pytest.raises(UsageError, match=r"^--stop-grace: expected a whole number of seconds "
                                             r"of at least 0, got "):
            settings.STOP_GRACE.parse(text, "--stop-grace")
    path = tmp_path / "webhook.yaml"
    path.write_text("allow_unsigned: true\nstop_grace: -5\n")
    with pytest.raises(UsageError, match=r": stop_grace: expected a whole number of seconds of at "
                                         r"least 0, got -5$"):
        settings.load(str(path), environ={})


def test_executor_and_plan_batches_are_one_function_that_refuses_a_size_under_one():
    assert batches(list("abcde"), 2) == [["a", "b"], ["c", "d"], ["e"]]
    assert batches(list("ab"), None) == batches(list("ab"), 5) == [["a", "b"]]
    assert batches([], 3) == []
    with pytest.raises(UsageError, match="^batch_size: expected an integer of at least 1, got 0$"):
        batches(list("ab"), 0)


@pytest.mark.parametrize("text, mode", [("644", 0o644), ("0644", 0o644), ("2775", 0o2775),
                                        (" 600 ", 0o600)])
def test_a_file_mode_is_read_in_octal(text, mode):
    assert bounds.file_mode(text) == mode
    assert param("mode", FileMode).read(text, "--mode") == text  # checked as read, kept as text


@pytest.mark.reliability(fault="a file mode that is not octal (upload --mode 999)",
                         outcome="exit 2, one line naming --mode and what a mode looks like")
@pytest.mark.parametrize("text", ["999", "0x1a4", "rw-r--r--", "12345", "64", ""])
def test_a_file_mode_that_is_not_octal_is_one_line_naming_the_option(text):
    with pytest.raises(UsageError) as refused:
        param("mode", FileMode).read(text, "--mode")
    assert str(refused.value) == f"--mode: expected an octal file mode like 0644, got {text!r}"
