"""The certificate authority's own state on a server: service on/off, policy, the CA itself.

Signing and requests are multi-host flows (``steps.ca.enrolment``); what is here
concerns one server at a time.
"""
from __future__ import annotations

import shlex

from ...errors import StepError
from ...puppet import conf, node
from ...step import Step, StepContext
from .. import puppetserver_control
from ..files import FileEdit


class CaService(FileEdit):
    """services.d/ca.cfg runs the CA service (main) or the CA-disabled one (compilers: set
    before the first start, or the compiler comes up as a CA of its own)."""

    def __init__(self, enabled: bool):
        super().__init__()
        self.enabled = enabled
        self.name = f"CA service {'enabled' if enabled else 'disabled'}"

    def path(self, ctx: StepContext) -> str:
        return node.layout(ctx.target).ca_cfg

    def edit(self, ctx: StepContext, current: str | None) -> str:
        return conf.ca_cfg(current, self.enabled)


class CaPolicy(FileEdit):
    """conf.d/ca.conf lets the CA sign requests with alt names (compilers carry the LB's
    name). Safe only because puppetops checks every alt name before it signs."""

    name = "CA policy"
    POLICY = {"allow-subject-alt-names": "true"}

    def path(self, ctx: StepContext) -> str:
        return node.layout(ctx.target).ca_conf

    def edit(self, ctx: StepContext, current: str | None) -> str:
        return conf.hocon_settings(current, "certificate-authority", self.POLICY)


class CaCreated(Step):
    """The CA exists, created offline with ``puppetserver ca setup`` (only while the server is
    stopped: setup refuses to run next to a running CA)."""

    name = "CA created"
    timeout = 120.0

    def _ca_cert(self, ctx: StepContext) -> str:
        return f"{node.layout(ctx.target).cadir}/ca_crt.pem"

    def check(self, ctx: StepContext) -> str | None:
        if ctx.test(f"[ -f {shlex.quote(self._ca_cert(ctx))} ]"):
            return None
        return f"create the CA for {node.certname(ctx.target)} (puppetserver ca setup)"

    def change(self, ctx: StepContext) -> None:
        layout = node.layout(ctx.target)
        if puppetserver_control.running(ctx, layout):
            raise StepError("no CA yet but puppetserver is running; stop it so "
                            "`puppetserver ca setup` can create the CA offline")
        certname = node.certname(ctx.target)
        ctx.run(f"{shlex.quote(layout.puppetserver)} ca setup --certname {shlex.quote(certname)}")
