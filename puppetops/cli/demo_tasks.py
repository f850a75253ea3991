"""``invoke demo``: the main job, a lab taken through the whole lifecycle (``puppetops.demo``),
run through ``runner.execute`` like every other command: same output formats, log file,
lock and exit codes."""
from __future__ import annotations

import sys
from typing import Any

from ..errors import NeedsAttention
from ..lab import LabError
from ..output import HumanOutput
from .lab_tasks import LAB_OPTIONS, LabShape, lab_task
from .options import RunOptions, run_params
from .runner import execute, fail

RUN_OPTIONS = ("format", "log_file", "timeout")
"""The run options the demo takes (it picks its own targets and inventory: the lab's)."""


@lab_task(*LAB_OPTIONS, *(p for p in run_params() if p.name in RUN_OPTIONS))
def demo(c, *, format: str, log_file: str | None, timeout: float | None, **shape: Any):
    """The main job: bring a lab up, run the whole lifecycle on it, leave it up to explore."""
    from puppetops import demo as lifecycle
    from puppetops.plans.status import status
    wanted = LabShape(**shape)
    print(f"bringing the lab up in {wanted.state_dir} ({wanted.bridge}, {wanted.subnet})",
          file=sys.stderr)
    try:
        lab = wanted.up()
    except LabError as exc:
        raise fail(exc) from None
    human = format == "human"

    def everything(run, _targets) -> None:
        done = lifecycle.lifecycle(run, out=sys.stdout if human else None)
        built = all(stage.ok for stage in done)
        found = status(run) if built else None  # what `invoke status` says of the new fleet
        if found:
            if human:
                print(file=sys.stdout)
            run.output.status(found.document)  # human: its table; json: in the document
        if human and built:
            _quiet_step_table(run)  # the stage tables and the status say it all
        print(lifecycle.overview(done, lab), file=sys.stdout if human else sys.stderr, flush=True)
        if found and not found.ok:
            raise NeedsAttention(found.attention())

    execute(everything, RunOptions(inventory=str(lab.inventory), format=format,
                                   log_file=log_file, timeout=timeout))


def _quiet_step_table(run) -> None:
    """No step-by-step table at the end of the run (failures would still be listed)."""
    for outputter in run.output.outputters:
        if isinstance(outputter, HumanOutput):
            outputter.summary = False
