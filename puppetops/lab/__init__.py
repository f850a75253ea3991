"""The lab: real hosts on this machine for testing puppetops end to end, without Docker or systemd.

Each lab host is a network namespace with a veth on the lab bridge (the controller is .1 on it),
a UTS namespace carrying its short hostname (``hostname -f`` gives the FQDN via /etc/hosts), a
PID namespace in which its sshd is PID 1, and a mount namespace whose root is an overlay of the
live root filesystem (lower) and a per-host upper dir, with private /proc, /run and /tmp. Hosts
are reached as root over SSH with the lab's own key and host key checking on.

    from puppetops.lab import Lab
    info = Lab().up()            # main, compiler1, compiler2, lb, agent1, agent2
    info.inventory               # /var/tmp/puppetops-lab/inventory.yaml
    Lab().status(); Lab().down()

Starting daemons inside lab hosts (there is no systemd)
-------------------------------------------------------
Run them over SSH detached from the session, output redirected, with a pidfile in the host's
private /run::

    setsid CMD ARGS >/var/log/NAME.log 2>&1 </dev/null & echo $! > /run/NAME.pid

* ``setsid`` puts the daemon in its own session so it survives the end of the SSH session; it
  is reparented to the host's PID 1 (sshd), which reaps it when it exits.
* All three redirections are needed: a daemon that keeps the session's stdout/stderr open makes
  the ``ssh`` client wait for it forever.
* Where a package ships an init script that works without systemd, use it:
  ``/etc/init.d/haproxy start``, ``/etc/init.d/puppet start`` (pidfiles /run/haproxy.pid,
  /run/puppet/agent.pid). ``haproxy -f CFG`` with ``daemon`` + ``pidfile`` in its config also works.
* puppetserver: ``setsid puppetserver foreground >/var/log/puppetserver.out 2>&1 </dev/null &``.
  Never ``nohup`` it: nohup leaves SIGHUP ignored, and the JVM then never installs its HUP
  handler, so ``kill -HUP`` (reload) silently does nothing.

``down()`` needs none of those pidfiles: stopping a host's PID 1 makes the kernel end every
process in that host's PID namespace, and any process that entered a lab netns some other way is
found through the namespace (as ``ip netns pids`` does) and stopped too.
"""
from .errors import LabError
from .inventory import DEFAULT_STATE_DIR, render_inventory, write_inventory
from .lab import DEFAULT_BRIDGE, HostStatus, Lab, LabInfo
from .packages import LAB_PACKAGES, lab_setup
from .topology import DEFAULT_SUBNET, DOMAIN, MAX_HOSTS, LabHost, Topology, default_topology

__all__ = [
    "DEFAULT_BRIDGE", "DEFAULT_STATE_DIR", "DEFAULT_SUBNET", "DOMAIN", "LAB_PACKAGES", "MAX_HOSTS",
    "HostStatus", "Lab", "LabError", "LabHost", "LabInfo", "Topology",
    "default_topology", "lab_setup", "render_inventory", "write_inventory",
]
