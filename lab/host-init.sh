#!/bin/sh
# host-init.sh HOST LAB_DIR
#
# PID 1 of one lab host. lab.sh starts it already inside the host's network namespace
# (ip netns exec) and fresh UTS, mount and PID namespaces with their own /proc (unshare --uts
# --pid --fork --mount-proc --propagation private). It builds the host's private view of the
# filesystem and then becomes the host's sshd, whose PID is the handle lab.sh uses
# (nsenter -t PID -n -m -u -p) for everything else. As PID 1, sshd also reaps the services
# the daemonless systemctl leaves behind. None of these mounts is visible from the root
# namespace, and `ps`/`pkill` on a host see only that host's processes.
set -eu
host=$1 lab=$2
d=$lab/hosts/$host

hostname "$host"

# The host's own /etc: a copy of the machine's, with this host's sshd config and host key,
# nginx site, systemd units and API key (lab.sh prepared it).
mount --bind "$d/etc" /etc
mount --bind "$d/log" /var/log
# The demo binary lives in /opt/cctelegram/bin, as a real install would.
mount --bind "$lab/opt" /opt
# The database host's cluster: its data under the lab dir, at Debian's path.
if [ -d "$d/postgresql" ]; then mount --bind "$d/postgresql" /var/lib/postgresql; fi

# No systemd here: the daemonless systemctl (docker-systemctl-replacement, extracted from
# Debian's package) and a journalctl that reads its per-unit logs, so the runbook's
# command lines run unchanged.
mount --bind "$lab/pkg/systemctl-root/usr/bin/systemctl" /usr/bin/systemctl
mount --bind "$lab/bin/journalctl" /usr/bin/journalctl

# This machine's /root/.bashrc runs `pyenv init`; bash sources it for every command run
# through sshd (~170 ms each).
if [ -f /root/.bashrc ]; then mount --bind "$lab/bin/root-bashrc" /root/.bashrc; fi

# tmpfs mounts last: the lab dir may live under /tmp, and every bind above is resolved already.
mount -t tmpfs -o mode=755,size=64m tmpfs /run
mkdir -p /run/sshd /run/cctelegram /run/lock
chmod 1777 /run/lock
printf 'ok\n' >/run/cctelegram/mcp.mode
printf 'ok\n' >/run/cctelegram/bridge.mode
if [ -d "$d/postgresql" ]; then # the cluster's socket directory (Debian's default)
    mkdir -p -m 2775 /run/postgresql
    chown postgres:postgres /run/postgresql
fi
mount -t tmpfs -o mode=1777,size=64m tmpfs /tmp
# Small on purpose: the disk-full fault fills it.
mount -t tmpfs -o mode=755,size=16m tmpfs /var/lib/cctelegram

# The daemonless systemctl takes the boot time from the mtime of /proc/1/status, here this
# host's. If the kernel drops that inode (drop_caches, memory pressure) the mtime jumps to
# "now" and every service reads as dead; an open fd pins it. PID 1 keeps its /proc entry
# across the exec below.
sleep infinity 3</proc/1/status </dev/null >/dev/null 2>&1 &

# -D: stay in the foreground, so this PID stays the listener (absolute paths: sshd re-execs).
exec /usr/sbin/sshd -D -f /etc/ssh/sshd_config -E /var/log/sshd.log
