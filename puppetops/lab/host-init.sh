#!/bin/bash
# PID 1 of one lab host, until it execs sshd. Started by puppetops.lab as
#   setsid ip netns exec NETNS unshare --mount --uts --pid --fork --propagation private \
#       -- bash host-init.sh NETNS SHORT ADDRESS/PREFIX HOSTDIR  >HOSTDIR/init.log 2>&1 </dev/null &
# so it already runs in the host's network, mount, UTS and PID namespaces. The controller has
# prepared HOSTDIR/upper (identity, sshd config, host keys); this script only does what needs the
# namespaces. Mount sources are named NETNS-* so a leaked mount is recognisable anywhere.
set -euo pipefail
netns=$1 short=$2 cidr=$3 dir=$4
root=$dir/merged

hostname "$short"                         # UTS ns; `hostname -f` resolves it via /etc/hosts
ip -batch - <<EOF                         # no default route: lab traffic stays on the bridge
link set lo up
addr add $cidr dev eth0
link set eth0 up
EOF

mount -t overlay "$netns-root" -o "lowerdir=/,upperdir=$dir/upper,workdir=$dir/work" "$root"
mount -t proc "$netns-proc" "$root/proc"  # this PID ns: `ps`, facter see only this host (P7)
mount --rbind /dev "$root/dev"
mount --rbind /sys "$root/sys"            # `ip netns exec` mounted this netns's sysfs
mount -t tmpfs -o mode=755 "$netns-run" "$root/run"
mount -t tmpfs -o mode=1777 "$netns-tmp" "$root/tmp"
mkdir -p "$root/run/sshd" "$root/run/puppet" "$root/run/haproxy"   # private /run is empty (P11)

# sshd stays PID 1: it reaps orphaned daemons, and killing it ends every process of the host
exec chroot "$root" /usr/sbin/sshd -D -E /var/log/puppetops-lab-sshd.log
