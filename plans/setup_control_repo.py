"""The ``setup_control_repo`` plan: the git control repo r10k deploys from, on main."""
from __future__ import annotations

from puppetops.flow import single
from puppetops.params import TargetSpec
from puppetops.plan_registry import plan
from puppetops.run import Run
from puppetops.steps import Packages
from puppetops.steps.code import provision
from puppetops.steps.code.r10k import ControlRepo


@plan(main="targets")
def setup_control_repo(run: Run, targets: TargetSpec = "main", environment: str = "production"
                       ) -> None:
    """A bare git control repo on main (var control_repo_path, default /srv/puppet/control.git)
    with an ``environment`` branch: site.pp, environment.conf, an empty Puppetfile.

    Skipped when the inventory var control_repo names an external repository.

    Args:
        environment: the branch to create
    """
    main = single(run, targets, "setup_control_repo")
    path = provision.repo_on_main(main)
    if path is None:
        run.message(f"control_repo is {main.vars['control_repo']}: no control repo on main")
    else:
        run.pipeline([Packages("git"), ControlRepo(path, environment)], [main])
