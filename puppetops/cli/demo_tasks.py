"""``invoke demo``: the main job, a lab taken through the whole lifecycle (``puppetops.demo``),
run through ``runner.execute`` like every other command: same output formats, log file,
lock and exit codes."""
from __future__ import annotations

import sys
from typing import Literal

from ..errors import NeedsAttention
from ..lab import DEFAULT_BRIDGE, DEFAULT_STATE_DIR, DEFAULT_SUBNET, Lab, LabError
from ..output import FORMATS, HumanOutput
from ..params import Count, Seconds
from .options import RunOptions
from .parsing import typed_task
from .runner import execute, fail


@typed_task(run_options=False)
def demo(c, format: Literal[FORMATS] = "human", state_dir: str = DEFAULT_STATE_DIR,
         subnet: str = DEFAULT_SUBNET, bridge: str = DEFAULT_BRIDGE, compilers: Count = 2,
         agents: Count = 2, log_file: str | None = None, timeout: Seconds | None = None):
    """The main job: bring a lab up, run the whole lifecycle on it, leave it up to explore.

    Args:
        format: output format (json: one document on stdout)
        state_dir: the lab's state directory
        subnet: the lab's IPv4 /24
        bridge: the lab's bridge name, also its netns prefix
        compilers: number of compilers
        agents: number of agents
        log_file: append JSON lines (every step, target, status, timing) to this file
        timeout: overall time limit for the run, in seconds
    """
    from puppetops import demo as lifecycle
    from puppetops.plans.status import status
    print(f"bringing the lab up in {state_dir} ({bridge}, {subnet})", file=sys.stderr)
    try:
        lab = Lab(state_dir, subnet, bridge).up(compilers, agents)
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
