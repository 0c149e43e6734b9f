#!/usr/bin/env bash
# lab.sh - the runbook-mcp test lab: real services, no systemd, no mocks.
#
#   lab.sh install          apt packages (skipped when present) + the daemonless systemctl
#   lab.sh start            (re)start the lab from nothing; idempotent
#   lab.sh stop             stop everything; leaves no netns, bridge, veth or lab process
#   lab.sh status           one line per component; exit 1 if anything is down
#   lab.sh env              print the path of lab.env (source it in tests)
#   lab.sh exec HOST CMD..  run CMD inside HOST's namespaces (fault injection)
#   lab.sh freeze HOST      SIGSTOP every sshd process of HOST (listener + each connection)
#   lab.sh thaw HOST        SIGCONT them
#
# The lab: bridge rbkbr0 10.200.0.1/24 and three hosts mcp-01..03 (10.200.0.11-13), each a
# network namespace with its own hostname, /etc, /var/log, /run, /tmp and a 16 MiB
# /var/lib/cctelegram; each runs sshd :22 (user runbook with sudo -n; root on mcp-03),
# cctelegram-mcp :8080 and cctelegram-bridge :8081 (the demo binary), nginx :80 (all three
# under the daemonless systemctl) and a node exporter :9100. In the root namespace: Prometheus
# 127.0.0.1:9090, an nginx load balancer on 10.200.0.1:8088 and 127.0.0.1:8088, and
# PostgreSQL 15 on 127.0.0.1:5433. Everything lives under $RUNBOOK_LAB_DIR (/tmp/runbook-lab).
# The demo binary comes from $RUNBOOK_DEMO_BIN (default target/debug/cctelegram-demo).
set -euo pipefail

LAB=${RUNBOOK_LAB_DIR:-/tmp/runbook-lab}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
DEMO_BIN=${RUNBOOK_DEMO_BIN:-$HERE/../target/debug/cctelegram-demo}
HOSTS=(mcp-01 mcp-02 mcp-03)
NET=10.200.0
BR=rbkbr0
LAB_USER=runbook
SUDOERS=/etc/sudoers.d/runbook-lab
PKGS=(iproute2 procps curl python3 openssh-server openssh-client sudo nginx prometheus
    prometheus-node-exporter postgresql apache2-utils jq net-tools)
SYSTEMCTL=$LAB/pkg/systemctl-root/usr/bin/systemctl
NTARGETS=$((1 + 3 * ${#HOSTS[@]})) # prometheus + node, mcp and bridge per host
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

log() { printf '[lab %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() {
    log "ERROR: $*"
    exit 1
}
ms() { date +%s%3N; }
hip() { echo "$NET.$((10 + 10#${1#mcp-}))"; }
rand_hex() { od -An -N"$1" -tx1 /dev/urandom | tr -d ' \n'; }
netns_exists() { [ -e "/run/netns/$1" ]; }
pgbin() { find /usr/lib/postgresql -maxdepth 2 -name bin 2>/dev/null | sort -V | tail -1; }

# A process counts as gone once it is a zombie: PID 1 here reaps orphans only every ~1.5 s.
alive() { [ -r "/proc/$1/stat" ] && [ "$(cut -d' ' -f3 "/proc/$1/stat" 2>/dev/null)" != Z ]; }

# wait_for DESCRIPTION SECONDS CMD... : poll CMD every 50 ms
wait_for() {
    local what=$1 limit=$(($2 * 20)) i
    shift 2
    for ((i = 0; i < limit; i++)); do
        "$@" >/dev/null 2>&1 && return 0
        sleep 0.05
    done
    die "timed out waiting for $what"
}

# bg NAME CMD... : start a lab daemon in its own session (a caller killing its process group
# must not take the lab down), stdio off any pipe, PID in run/NAME.pid
bg() {
    local name=$1
    shift
    setsid "$@" </dev/null >"$LAB/logs/$name.log" 2>&1 &
    echo $! >"$LAB/run/$name.pid"
}

host_pid() {
    local pid
    pid=$(cat "$LAB/run/sshd-$1.pid" 2>/dev/null) || die "$1 is not running (lab.sh start)"
    alive "$pid" || die "$1: its sshd (PID $pid) is gone"
    echo "$pid"
}

# in_host HOST CMD... : run CMD in HOST's network, mount and UTS namespaces
in_host() {
    local pid
    pid=$(host_pid "$1")
    shift
    nsenter -t "$pid" -n -m -u --wd=/ -- "$@"
}

# curl with the API key from the secret file, sent on stdin so it never shows in ps
curl_key() { curl -s -H @- "$@" <<<"X-API-Key: $(cat "$LAB/secrets/api_key")"; }
http_code() { curl -s -o /dev/null -w '%{http_code}' --max-time "${2:-2}" "$1"; }
http_code_key() { curl_key -o /dev/null -w '%{http_code}' --max-time "${2:-2}" "$1"; }

# ---------------------------------------------------------------------------------------------
# preflight

need_root() { [ "$(id -u)" = 0 ] || die "run as root (network namespaces, mounts, sshd)"; }

check_lab_path() {
    case $LAB in
    /*[[:space:]]* | *[\"\'\$\`\\]*) die "RUNBOOK_LAB_DIR must not contain spaces or quotes: $LAB" ;;
    /*) ;;
    *) die "RUNBOOK_LAB_DIR must be an absolute path: $LAB" ;;
    esac
}

missing_pkgs() {
    local installed
    installed=" $(dpkg-query -W -f='${Package}=${db:Status-Status} ' "${PKGS[@]}" 2>/dev/null || true)"
    local p
    for p in "${PKGS[@]}"; do
        [[ $installed == *" $p=installed "* ]] || echo "$p"
    done
}

preflight() {
    need_root
    check_lab_path
    local probe=rbk-probe-$$ missing
    ip netns add "$probe" 2>/dev/null && ip netns del "$probe" ||
        die "'ip netns' does not work here (need root with CAP_SYS_ADMIN and a writable /run/netns)"
    missing=$(missing_pkgs | xargs)
    [ -z "$missing" ] || die "missing packages: $missing (run: $0 install)"
    [ -x "$SYSTEMCTL" ] && grep -q 'runbook-lab patch' "$SYSTEMCTL" ||
        die "daemonless systemctl not extracted (run: $0 install)"
    [ -n "$(pgbin)" ] || die "no PostgreSQL server binaries under /usr/lib/postgresql (run: $0 install)"
    [ -x "$DEMO_BIN" ] || die "demo binary $DEMO_BIN missing: cargo build --bin cctelegram-demo (or set RUNBOOK_DEMO_BIN)"
}

# ---------------------------------------------------------------------------------------------
# install

cmd_install() {
    need_root
    check_lab_path
    local t0 missing made_policy=0 out
    t0=$(ms)
    missing=$(missing_pkgs | xargs)
    if [ -n "$missing" ]; then
        log "installing: $missing"
        # Package postinst scripts must not start daemons on the default ports (22, 80, 5432,
        # 9090, 9100): policy-rc.d exiting 101 forbids it (honoured with and without systemd).
        if [ ! -e /usr/sbin/policy-rc.d ]; then
            printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
            chmod 755 /usr/sbin/policy-rc.d
            made_policy=1
        fi
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
            "${PKGS[@]}" >"/tmp/runbook-lab-apt.$$.log" 2>&1 ||
            { cat "/tmp/runbook-lab-apt.$$.log" >&2; die "apt-get install failed"; }
        rm -f "/tmp/runbook-lab-apt.$$.log"
        [ $made_policy = 0 ] || rm -f /usr/sbin/policy-rc.d
    fi
    # Debian's "systemctl" package is docker-systemctl-replacement, one Python script. Its
    # package Conflicts: systemd (installing it would remove systemd and 13 more packages),
    # so it is only downloaded and extracted into the lab dir, never installed.
    if [ ! -x "$SYSTEMCTL" ] || ! grep -q 'runbook-lab patch' "$SYSTEMCTL"; then
        mkdir -p "$LAB/pkg"
        rm -rf "$LAB/pkg/systemctl-root" "$LAB"/pkg/systemctl_*.deb
        out=$(cd "$LAB/pkg" && { apt-get download -q systemctl 2>&1 ||
            { apt-get update -qq && apt-get download -q systemctl 2>&1; }; }) ||
            { echo "$out" >&2; die "apt-get download systemctl failed"; }
        dpkg-deb -x "$LAB"/pkg/systemctl_*.deb "$LAB/pkg/systemctl-root"
        [ -x "$SYSTEMCTL" ] || die "systemctl replacement not found in the package"
        patch_systemctl
    fi
    log "install done in $(($(ms) - t0)) ms"
}

# The replacement keeps only the last `-p NAME`; real systemd takes `-p A,B,C` and repeated -p,
# which is what `systemctl show -p ActiveState,SubState,MainPID UNIT` needs.
patch_systemctl() {
    sed -i \
        -e 's/dest="unit_property", default=_unit_property,/dest="unit_property", action="append", default=None,/' \
        -e 's/^    _unit_property = opt.unit_property$/    _unit_property = [p for v in (opt.unit_property or []) for p in v.split(",") if p] or None  # runbook-lab patch/' \
        -e 's/if self._unit_property != var:/if var not in self._unit_property:/' \
        -e 's/conf.getlist("Service", _unit_property)/conf.getlist("Service", _unit_property[0])/' \
        "$SYSTEMCTL"
    [ "$(grep -c -e 'action="append", default=None' -e 'runbook-lab patch' -e 'if var not in self._unit_property' \
        -e '_unit_property\[0\]' "$SYSTEMCTL")" = 4 ] || die "patching systemctl -p failed (new upstream version?)"
}

# ---------------------------------------------------------------------------------------------
# teardown (stop, and the first step of start)

# stop_pid PID... : CONT (it may be frozen), TERM, wait up to 5 s, KILL
stop_pids() {
    local p i left
    [ $# -gt 0 ] || return 0
    kill -CONT "$@" 2>/dev/null || true
    kill -TERM "$@" 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do
        left=0
        for p in "$@"; do alive "$p" && left=1; done
        [ $left = 0 ] && return 0
        sleep 0.05
    done
    kill -KILL "$@" 2>/dev/null || true
}

stop_pidfile() {
    local f=$LAB/run/$1.pid
    [ -f "$f" ] || return 0
    stop_pids "$(cat "$f")"
    rm -f "$f"
}

teardown() {
    local h pids=()
    # Root-namespace clients of the hosts go first: a scrape or proxy connection orphaned in a
    # host's netns keeps retransmitting into the deleted bridge and keeps that netns and its
    # veth alive for minutes (lab-notes, teardown gotcha).
    stop_pidfile prometheus
    stop_pidfile lb
    # Every process in a host's netns belongs to the lab (sshd and its sessions, services,
    # node exporter). All hosts at once: one wait instead of three.
    for h in "${HOSTS[@]}"; do
        netns_exists "$h" && mapfile -t -O "${#pids[@]}" pids < <(ip netns pids "$h")
    done
    stop_pids "${pids[@]}"
    for h in "${HOSTS[@]}"; do
        ip link del "veth-$h" 2>/dev/null || true # both ends, even if the netns lingers
        ! netns_exists "$h" || ip netns del "$h"
        rm -f "$LAB/run/sshd-$h.pid" "$LAB/run/node-exporter-$h.pid"
    done
    ip link del "$BR" 2>/dev/null || true
    stop_postgres
    local f
    for f in "$LAB"/run/*.pid; do [ -f "$f" ] && stop_pidfile "$(basename "$f" .pid)"; done
    rm -f "$SUDOERS"
    if [ -f "$LAB/run/made-var-lib-cctelegram" ]; then
        rmdir /var/lib/cctelegram 2>/dev/null || true
        rm -f "$LAB/run/made-var-lib-cctelegram"
    fi
}

stop_postgres() {
    local data=$LAB/pg/data pid
    [ -f "$data/postmaster.pid" ] || return 0
    pid=$(head -1 "$data/postmaster.pid")
    runuser -u postgres -- "$(pgbin)/pg_ctl" -D "$data" -m fast -w -t 10 stop >/dev/null 2>&1 ||
        stop_pids "$pid"
}

# leftovers: what of the lab still exists (empty output = nothing)
leftovers() {
    local h f ino inos=()
    for h in "${HOSTS[@]}"; do
        ! netns_exists "$h" || echo "netns $h"
        ! ip link show "veth-$h" >/dev/null 2>&1 || echo "link veth-$h"
        f=$LAB/run/netns-$h.ino
        [ -f "$f" ] && inos+=("$(cat "$f")")
    done
    ! ip link show "$BR" >/dev/null 2>&1 || echo "bridge $BR"
    [ ! -e "$SUDOERS" ] || echo "file $SUDOERS"
    # processes still inside a lab netns (also one whose name was deleted)
    if [ ${#inos[@]} -gt 0 ]; then
        ino=$(
            IFS='|'
            echo "${inos[*]}"
        )
        # shellcheck disable=SC2012 # one ls instead of a readlink per process
        ls -l /proc/[0-9]*/ns/net 2>/dev/null | grep -E "net:\[($ino)\]" |
            sed -n 's|.* /proc/\([0-9]*\)/ns/net .*|\1|p' | while read -r pid; do
            alive "$pid" && echo "process $pid $(tr '\0' ' ' <"/proc/$pid/cmdline")"
        done
    fi
    # lab daemons of the root namespace (all name the lab dir on their command line)
    ps -eo pid=,comm=,args= | awk -v lab="$LAB/" \
        '$2 ~ /^(prometheus|nginx|postgres|sleep|sshd|prometheus-node)/ && index($0, lab) { print "process " $0 }' |
        while read -r _ pid rest; do alive "$pid" && echo "process $pid $rest"; done
}

cmd_stop() {
    need_root
    check_lab_path
    local t0 left
    t0=$(ms)
    teardown
    left=$(leftovers)
    if [ -n "$left" ]; then
        log "stop: these are still there:"
        echo "$left" >&2
        exit 1
    fi
    rm -f "$LAB"/run/netns-*.ino
    log "lab stopped in $(($(ms) - t0)) ms"
}

# ---------------------------------------------------------------------------------------------
# start: the pieces

# The daemonless systemctl takes the boot time from the mtime of /proc/1/status. When the kernel
# drops that inode (memory pressure, drop_caches) the mtime jumps to "now", and the script
# then believes the machine rebooted and reports every service inactive. An open fd pins the
# inode; the holder starts before any service and lives as long as the lab.
start_holder() {
    # argv[0] names the lab dir, so leftovers() recognises it
    setsid bash -c 'exec -a "$0" sleep infinity' "$LAB/run/proc1-holder" 3</proc/1/status \
        </dev/null >/dev/null 2>&1 &
    echo $! >"$LAB/run/proc1-holder.pid"
}
holder_ok() {
    local pid
    pid=$(cat "$LAB/run/proc1-holder.pid" 2>/dev/null) && alive "$pid" &&
        [ "$(readlink "/proc/$pid/fd/3")" = /proc/1/status ]
}

prepare_dirs() {
    mkdir -p "$LAB"
    chmod 755 "$LAB" # postgres (initdb) must traverse it
    # the old tree goes in the background: deleting 3 copies of /etc costs ~0.7 s on this disk
    local old=$LAB/.old.$$
    mkdir -p "$old"
    mv "$LAB/hosts" "$LAB/logs" "$LAB/lb" "$LAB/prometheus" "$LAB/opt" "$old/" 2>/dev/null || true
    (setsid nice rm -rf "$LAB"/.old.* </dev/null >/dev/null 2>&1 &)
    mkdir -p "$LAB"/{run,logs,bin,hosts,state,lb/logs,lb/tmp,prometheus,opt/cctelegram/bin}
    install -m 755 "$HERE/host-init.sh" "$HERE/journalctl" "$LAB/bin/"
    install -m 644 "$HERE/root-bashrc" "$LAB/bin/"
    install -m 755 "$DEMO_BIN" "$LAB/opt/cctelegram/bin/cctelegram-demo"
    # one binary, two names: `pkill -f cctelegram-bridge` and `ps | grep cctelegram` see the service
    ln -s cctelegram-demo "$LAB/opt/cctelegram/bin/cctelegram-mcp"
    ln -s cctelegram-demo "$LAB/opt/cctelegram/bin/cctelegram-bridge"
    # The node exporter reads mounts from /proc/1/mounts, which is the root namespace's here;
    # this /proc look-alike points 1/mounts at the reader's own, so each host reports its disks.
    local p=$LAB/opt/node-exporter/proc
    mkdir -p "$p/1"
    ln -s $(find /proc -mindepth 1 -maxdepth 1 ! -name '[0-9]*') "$p/"
    ln -s /proc/self/mounts "$p/1/mounts"
    ln -s /proc/self/mountinfo "$p/1/mountinfo"
    # mountpoint for each host's small tmpfs (its mount is private to the host)
    if [ ! -d /var/lib/cctelegram ]; then
        mkdir /var/lib/cctelegram
        touch "$LAB/run/made-var-lib-cctelegram"
    fi
}

make_secrets() {
    local s=$LAB/secrets pw
    mkdir -p "$s"
    chmod 700 "$s"
    # kept across restarts; no trailing newline, so naive readers get the exact value
    [ -s "$s/api_key" ] || (umask 077 && printf '%s' "$(rand_hex 24)" >"$s/api_key")
    pw=$(sed -n 's|^postgres://runbook:\([0-9a-f]*\)@.*|\1|p' "$s/database_url" 2>/dev/null || true)
    [ -n "$pw" ] || pw=$(rand_hex 16)
    (umask 077 && printf 'postgres://runbook:%s@127.0.0.1:5433/cctelegram' "$pw" >"$s/database_url")
    chmod 600 "$s/api_key" "$s/database_url"
}

make_ssh_keys() {
    local d=$LAB/ssh h
    mkdir -p "$d/hostkeys"
    chmod 700 "$d"
    [ -f "$d/client_key" ] || ssh-keygen -q -t ed25519 -N '' -C runbook-lab-client -f "$d/client_key"
    : >"$d/known_hosts"
    for h in "${HOSTS[@]}"; do
        # host keys are kept across restarts, so known_hosts of a running client stays valid
        [ -f "$d/hostkeys/$h" ] || ssh-keygen -q -t ed25519 -N '' -C "root@$h" -f "$d/hostkeys/$h"
        echo "$(hip "$h") $(cut -d' ' -f1,2 "$d/hostkeys/$h.pub")" >>"$d/known_hosts"
    done
    {
        for h in "${HOSTS[@]}"; do
            printf 'Host %s\n  HostName %s\n  User %s\n' "$h" "$(hip "$h")" "$(ssh_user "$h")"
        done
        printf 'Host mcp-*\n  IdentityFile %s\n  IdentitiesOnly yes\n' "$d/client_key"
        printf '  UserKnownHostsFile %s\n  StrictHostKeyChecking yes\n  BatchMode yes\n' "$d/known_hosts"
    } >"$d/ssh_config"
}

# mcp-03 covers the root login path; the others log in as the non-root user with sudo -n
ssh_user() { if [ "$1" = mcp-03 ]; then echo root; else echo "$LAB_USER"; fi; }

start_prometheus() {
    local f=$LAB/prometheus/prometheus.yml h job port
    {
        echo "# runbook lab (written by lab/lab.sh)"
        echo "global: {scrape_interval: 1s, scrape_timeout: 1s, evaluation_interval: 1s}"
        echo "scrape_configs:"
        echo "  - job_name: prometheus"
        echo "    static_configs: [{targets: ['127.0.0.1:9090']}]"
        for job in node:9100 cctelegram:8080 cctelegram-bridge:8081; do
            port=${job#*:}
            echo "  - job_name: ${job%:*}"
            echo "    static_configs:"
            for h in "${HOSTS[@]}"; do
                echo "      - {targets: ['$(hip "$h"):$port'], labels: {host: $h}}"
            done
        done
    } >"$f"
    promtool check config "$f" >/dev/null
    # started before the hosts exist: its target discovery needs ~5 s before the first scrape
    bg prometheus prometheus --config.file="$f" --storage.tsdb.path="$LAB/prometheus/data" \
        --web.listen-address=127.0.0.1:9090 --web.enable-lifecycle \
        --storage.tsdb.retention.time=1d --log.level=warn
}

ensure_user() {
    id -u "$LAB_USER" >/dev/null 2>&1 || useradd -m -s /bin/bash -c "runbook lab" "$LAB_USER"
    # sshd runs with UsePAM no, where a locked password ('!') refuses even key logins
    usermod -p '*' "$LAB_USER"
    local tmp
    tmp=$(mktemp)
    cat >"$tmp" <<EOF
# runbook lab (lab/lab.sh): the commands the runbook runs with sudo, without a password
$LAB_USER ALL=(root) NOPASSWD: /usr/bin/systemctl, /usr/bin/journalctl, /usr/sbin/nginx, /usr/bin/pkill, /usr/bin/kill, /usr/bin/rm, /usr/bin/sed, /usr/bin/cp, /usr/bin/tail, /usr/bin/cat
EOF
    visudo -cqf "$tmp" || {
        rm -f "$tmp"
        die "generated sudoers file is invalid"
    }
    install -m 440 "$tmp" "$SUDOERS"
    rm -f "$tmp"
}

setup_network() {
    local h
    ip link add "$BR" type bridge
    ip addr add "$NET.1/24" dev "$BR"
    ip link set "$BR" up
    for h in "${HOSTS[@]}"; do
        ip netns add "$h"
        stat -L -c %i "/run/netns/$h" >"$LAB/run/netns-$h.ino"
        ip link add "veth-$h" type veth peer name eth0 netns "$h"
        ip link set "veth-$h" master "$BR" up
        ip -n "$h" addr add "$(hip "$h")/24" dev eth0
        ip -n "$h" link set eth0 up
        ip -n "$h" link set lo up
        # no default route on purpose: a host reaches only 10.200.0.0/24
    done
}

write_unit() { # ETC ROLE PORT HOST DESCRIPTION
    cat >"$1/systemd/system/cctelegram-$2.service" <<EOF
[Unit]
Description=$5 (runbook lab demo)
After=network.target

[Service]
Type=simple
ExecStart=/opt/cctelegram/bin/cctelegram-$2 --role $2 --listen 0.0.0.0:$3 --name $4 --api-key-file /etc/cctelegram/api_key --log-dir /var/log/cctelegram --control-file /run/cctelegram/$2.mode
ExecReload=/bin/kill -HUP \$MAINPID
Restart=on-failure
TimeoutStopSec=5

[Install]
WantedBy=multi-user.target
EOF
}

# build_host HOST: the host's /etc (a copy of the machine's, made after the user and the sudoers
# file exist) and /var/log, bind-mounted by host-init.sh
build_host() {
    local h=$1 d=$LAB/hosts/$1 e=$LAB/hosts/$1/etc ip u
    ip=$(hip "$h")
    mkdir -p "$d"/log/{nginx,journal,cctelegram}
    chmod 755 "$d/log/cctelegram" # the runbook user reads the service logs
    cp -a /etc "$e"
    echo "$h" >"$e/hostname"
    {
        printf '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n'
        printf '%s\tlab-gateway\n' "$NET.1"
        for u in "${HOSTS[@]}"; do printf '%s\t%s\n' "$(hip "$u")" "$u"; done
    } >"$e/hosts" # sudo resolves the hostname; without it: "unable to resolve host"

    rm -f "$e"/ssh/ssh_host_*
    install -m 600 "$LAB/ssh/hostkeys/$h" "$e/ssh/ssh_host_ed25519_key"
    install -m 644 "$LAB/ssh/hostkeys/$h.pub" "$e/ssh/ssh_host_ed25519_key.pub"
    mkdir -p -m 755 "$e/ssh/authorized_keys"
    for u in root "$LAB_USER"; do install -m 644 "$LAB/ssh/client_key.pub" "$e/ssh/authorized_keys/$u"; done
    cat >"$e/ssh/sshd_config" <<EOF
# $h (runbook lab)
Port 22
ListenAddress 0.0.0.0
HostKey /etc/ssh/ssh_host_ed25519_key
PidFile /run/sshd.pid
AuthorizedKeysFile /etc/ssh/authorized_keys/%u
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
PermitRootLogin prohibit-password
AllowTcpForwarding no
X11Forwarding no
PrintMotd no
PrintLastLog no
UseDNS no
MaxSessions 50
MaxStartups 100:30:200
LogLevel VERBOSE
AcceptEnv LANG LC_*
Subsystem sftp /usr/lib/openssh/sftp-server
EOF
    mkdir -p /run/sshd # sshd -t insists on its privilege separation dir (the hosts have their own)
    /usr/sbin/sshd -t -f "$e/ssh/sshd_config" -h "$e/ssh/ssh_host_ed25519_key"

    sed -i 's/^worker_processes .*/worker_processes 1;/' "$e/nginx/nginx.conf"
    rm -f "$e"/nginx/sites-enabled/*
    cat >"$e/nginx/conf.d/ratelimit.conf" <<'EOF'
limit_req_zone $binary_remote_addr zone=api:1m rate=30r/s;
limit_req_status 429;
EOF
    cat >"$e/nginx/sites-available/cctelegram" <<EOF
server {
    listen 80 default_server;
    server_name $h;

    location = /healthz {
        default_type text/plain;
        return 200 "ok $h\n";
    }

    location / {
        # limit_req acts in the preaccess phase: a location that answers with 'return' (rewrite
        # phase) would never be limited, so this one proxies
        limit_req zone=api burst=5 nodelay;
        proxy_pass http://127.0.0.1:8080;
        proxy_set_header Host \$host;
        proxy_set_header X-Real-IP \$remote_addr;
        proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
    }
}
EOF
    ln -s /etc/nginx/sites-available/cctelegram "$e/nginx/sites-enabled/cctelegram"

    # only this host's units: the machine's enabled units (ssh, postgresql...) do not run here
    rm -rf "$e/systemd/system"
    mkdir -p "$e/systemd/system/multi-user.target.wants"
    write_unit "$e" mcp 8080 "$h" "CCTelegram MCP server"
    write_unit "$e" bridge 8081 "$h" "CCTelegram Telegram bridge"
    # enabled: the daemonless systemctl answers is-active "unknown" for units that are not
    ln -s /etc/systemd/system/cctelegram-mcp.service "$e/systemd/system/multi-user.target.wants/"
    ln -s /etc/systemd/system/cctelegram-bridge.service "$e/systemd/system/multi-user.target.wants/"
    ln -s /lib/systemd/system/nginx.service "$e/systemd/system/multi-user.target.wants/"

    mkdir -p -m 755 "$e/cctelegram"
    install -m 600 "$LAB/secrets/api_key" "$e/cctelegram/api_key"
}

start_host() {
    local h=$1
    bg "sshd-$h" ip netns exec "$h" unshare --uts --mount --propagation private \
        /bin/sh "$LAB/bin/host-init.sh" "$h" "$LAB"
    # $! is sshd itself: ip netns exec, unshare and the script all exec
}

start_host_services() {
    local h=$1
    wait_for "sshd on $h" 10 bash -c "exec 3<>/dev/tcp/$(hip "$h")/22"
    bg "node-exporter-$h" nsenter -t "$(host_pid "$h")" -n -m -u --wd=/ -- \
        prometheus-node-exporter --web.listen-address=:9100 --no-collector.systemd \
        --path.procfs=/opt/node-exporter/proc --log.level=warn
    # One systemctl per unit, in parallel: each start of a simple unit sleeps 0.5 s. A clean
    # environment, as if started by the init system.
    local u jobs=()
    for u in cctelegram-mcp cctelegram-bridge nginx; do
        in_host "$h" env -i PATH="$PATH" LANG=C.UTF-8 systemctl start "$u" \
            </dev/null >"$LAB/logs/systemctl-start-$h-$u.log" 2>&1 &
        jobs+=($!)
    done
    for u in "${jobs[@]}"; do
        wait "$u" || die "$h: systemctl start failed (see $LAB/logs/systemctl-start-$h-*.log)"
    done
    wait_for "ssh to $h" 10 ssh_ok "$h"
    wait_for "units active on $h" 10 units_active "$h"
    wait_for "health endpoints on $h" 10 health_ok "$h"
}

start_lb() {
    local L=$LAB/lb h
    {
        echo "# runbook lab load balancer (written by lab/lab.sh)"
        echo "worker_processes 1;"
        echo "pid $L/nginx.pid;"
        echo "error_log $L/logs/error.log warn;"
        echo "events { worker_connections 512; }"
        echo "http {"
        echo "    access_log $L/logs/access.log;"
        for h in client_body proxy fastcgi uwsgi scgi; do echo "    ${h}_temp_path $L/tmp/$h;"; done
        echo "    upstream cctelegram {"
        for h in "${HOSTS[@]}"; do echo "        server $(hip "$h"):80 max_fails=1 fail_timeout=2s;"; done
        echo "    }"
        cat <<'EOF'
    server {
        listen LABNET.1:8088;
        listen 127.0.0.1:8088;
        proxy_connect_timeout 1s;
        proxy_read_timeout 30s;
        # route around an instance that is down or failing, like a load balancer with health checks
        proxy_next_upstream error timeout http_502 http_503 http_504;
        proxy_set_header Host $host;
        proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
        location = /health { proxy_pass http://cctelegram/health; }
        location / { proxy_pass http://cctelegram; }
    }
}
EOF
    } | sed "s/LABNET/$NET/" >"$L/nginx.conf"
    nginx -t -q -p "$L/" -c "$L/nginx.conf" -e "$L/logs/error.log"
    bg lb nginx -p "$L/" -c "$L/nginx.conf" -e "$L/logs/error.log" -g 'daemon off;'
}

# start_postgres: fresh cluster, role runbook (password from the secret), database cctelegram
start_postgres() {
    local P=$LAB/pg bin pw
    bin=$(pgbin)
    pw=$(sed -n 's|^postgres://runbook:\([0-9a-f]*\)@.*|\1|p' "$LAB/secrets/database_url")
    rm -rf "$P"
    mkdir -p "$P/sock"
    chown -R postgres:postgres "$P"
    chmod 700 "$P"
    # initdb refuses to run as root; --no-sync: throwaway data, and fsync costs seconds here
    runuser -u postgres -- "$bin/initdb" -D "$P/data" -U postgres --auth=trust -E UTF8 \
        --locale=C.UTF-8 --no-sync >"$LAB/logs/initdb.log" 2>&1
    cat >"$P/data/pg_hba.conf" <<'EOF'
# superuser: trust, locally only; everyone else: password
local all postgres                trust
host  all postgres 127.0.0.1/32   trust
host  all all      127.0.0.1/32   scram-sha-256
EOF
    runuser -u postgres -- "$bin/pg_ctl" -D "$P/data" -l "$P/server.log" -w -t 30 -o \
        "-c listen_addresses=127.0.0.1 -p 5433 -k $P/sock -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
        start >/dev/null
    # the password goes on stdin, never on a command line
    psql -X -q -h 127.0.0.1 -p 5433 -U postgres -d postgres -v ON_ERROR_STOP=1 >/dev/null <<EOF
CREATE ROLE runbook LOGIN PASSWORD '$pw' IN ROLE pg_monitor, pg_signal_backend;
CREATE DATABASE cctelegram OWNER runbook;
EOF
}

write_config() {
    cat >"$LAB/runbook-mcp.toml" <<EOF
# runbook-mcp configuration for the runbook lab (written by lab/lab.sh)
[server]
state_dir = "$LAB/state"
command_timeout_secs = 5

[ssh]
known_hosts = "$LAB/ssh/known_hosts"
identity_file = "$LAB/ssh/client_key"
connect_timeout_secs = 3

[secrets]
api_key = { file = "$LAB/secrets/api_key" }
database_url = { file = "$LAB/secrets/database_url" }

[prometheus]
url = "http://127.0.0.1:9090"

[load_balancer]
health_url = "http://$NET.1:8088/health"
api_key_secret = "api_key"

EOF
    local h
    for h in "${HOSTS[@]}"; do
        printf '[hosts.%s]\naddress = "%s"\nssh = { user = "%s" }\nsudo = %s\n' "$h" "$(hip "$h")" \
            "$(ssh_user "$h")" "$([ "$(ssh_user "$h")" = root ] && echo false || echo true)"
    done >>"$LAB/runbook-mcp.toml"
    cat >>"$LAB/runbook-mcp.toml" <<'EOF'

[services.cctelegram-mcp]
manager = "systemd"
role = "app"
health_url = "http://{address}:8080/health"
metrics_url = "http://{address}:8080/metrics"
api_key_secret = "api_key"
logs = { application = "/var/log/cctelegram/application.log", security = "/var/log/cctelegram/security.log" }

[services.cctelegram-bridge]
manager = "systemd"
role = "bridge"
health_url = "http://{address}:8081/health"
metrics_url = "http://{address}:8081/metrics"
api_key_secret = "api_key"

[services.nginx]
manager = "systemd"
role = "proxy"
health_url = "http://{address}/healthz"

[diagnostics]
disks = ["/", "/var/log", "/var/lib/cctelegram"]
process_pattern = "cctelegram|nginx"
EOF
    (
        umask 077
        cat >"$LAB/lab.env" <<EOF
# runbook lab environment (written by lab/lab.sh); holds a secret, mode 600
export RUNBOOK_LAB_DIR=$LAB
export RUNBOOK_LAB_CONFIG=$LAB/runbook-mcp.toml
export RUNBOOK_LAB_HOSTS="${HOSTS[*]}"
export RUNBOOK_LAB_SSH_CONFIG=$LAB/ssh/ssh_config
export RUNBOOK_LAB_LB_URL=http://$NET.1:8088
export PROMETHEUS_URL=http://127.0.0.1:9090
export DATABASE_URL=$(cat "$LAB/secrets/database_url")
EOF
    )
}

# ---------------------------------------------------------------------------------------------
# readiness and status checks (each returns non-zero when not ready)

ssh_ok() { # HOST
    timeout 5 ssh -F /dev/null -i "$LAB/ssh/client_key" -o IdentitiesOnly=yes \
        -o UserKnownHostsFile="$LAB/ssh/known_hosts" -o StrictHostKeyChecking=yes \
        -o BatchMode=yes -o ConnectTimeout=3 "$(ssh_user "$1")@$(hip "$1")" true </dev/null
}
units_active() { # HOST : prints the states, fails unless all active
    local out
    out=$(in_host "$1" systemctl is-active cctelegram-mcp cctelegram-bridge nginx 2>/dev/null | xargs)
    echo "$out"
    [ "$out" = "active active active" ]
}
health_ok() { # HOST
    local ip
    ip=$(hip "$1")
    [ "$(http_code_key "http://$ip:8080/health")" = 200 ] &&
        [ "$(http_code_key "http://$ip:8081/health")" = 200 ] &&
        [ "$(http_code "http://$ip/healthz")" = 200 ]
}
lb_ok() { [ "$(http_code_key "http://$NET.1:8088/health")" = 200 ] && [ "$(http_code_key "http://127.0.0.1:8088/health")" = 200 ]; }
pg_ok() {
    PGPASSWORD=$(sed -n 's|^postgres://runbook:\([0-9a-f]*\)@.*|\1|p' "$LAB/secrets/database_url") \
        psql -X -At -h 127.0.0.1 -p 5433 -U runbook -d cctelegram -c 'select 1' 2>/dev/null | grep -qx 1
}
targets_up() { # prints "up/total"
    curl -s --max-time 2 'http://127.0.0.1:9090/api/v1/query?query=sum(up)' |
        sed -n 's/.*"value":\[[^,]*,"\([0-9]*\)".*/\1/p'
}
prom_ok() { [ "$(targets_up)" = "$NTARGETS" ]; }

cmd_start() {
    preflight
    local t0 h pg_job jobs=()
    t0=$(ms)
    teardown
    prepare_dirs
    start_holder     # before any service
    start_prometheus # early: its first scrape comes ~6 s after start
    make_secrets
    make_ssh_keys
    start_postgres &
    pg_job=$!
    ensure_user # before /etc is copied
    setup_network
    for h in "${HOSTS[@]}"; do
        build_host "$h" &
        jobs+=($!)
    done
    for h in "${jobs[@]}"; do wait "$h" || die "preparing a host failed"; done
    jobs=()
    for h in "${HOSTS[@]}"; do
        start_host "$h"
        start_host_services "$h" & # services, then ssh, units and health ready
        jobs+=($!)
    done
    start_lb
    write_config
    for h in "${jobs[@]}"; do wait "$h" || die "a host failed to start (see $LAB/logs)"; done
    wait "$pg_job" || die "postgres failed to start (see $LAB/logs/initdb.log, $LAB/pg/server.log)"
    wait_for "load balancer /health" 10 lb_ok
    wait_for "postgres" 10 pg_ok
    log "hosts ready (+$(($(ms) - t0)) ms); waiting for Prometheus' first scrapes"
    wait_for "prometheus: all $NTARGETS targets up" 30 prom_ok
    log "lab up in $(($(ms) - t0)) ms; config $LAB/runbook-mcp.toml; env: . $LAB/lab.env"
}

cmd_status() {
    need_root
    check_lab_path
    local bad=0 h states
    check() { # NAME DETAIL CMD... : one line, ok or FAIL
        local name=$1 detail=$2
        shift 2
        if "$@" >/dev/null 2>&1; then printf 'ok    %-20s %s\n' "$name" "$detail"; else
            printf 'FAIL  %-20s %s\n' "$name" "$detail"
            bad=1
        fi
    }
    check proc1-holder "/proc/1/status held open" holder_ok
    check bridge "$BR $NET.1/24" ip link show "$BR"
    for h in "${HOSTS[@]}"; do
        if ! netns_exists "$h" || ! alive "$(cat "$LAB/run/sshd-$h.pid" 2>/dev/null || echo 0)"; then
            check "$h" "netns or sshd missing" false
            continue
        fi
        check "$h ssh" "$(ssh_user "$h")@$(hip "$h"):22" ssh_ok "$h"
        states=$(units_active "$h" || true)
        check "$h units" "cctelegram-mcp cctelegram-bridge nginx: $states" \
            test "$states" = "active active active"
        check "$h health" ":8080/health :8081/health :80/healthz" health_ok "$h"
        check "$h node-exporter" ":9100/metrics" test "$(http_code "http://$(hip "$h"):9100/metrics")" = 200
    done
    check load-balancer "$NET.1:8088 127.0.0.1:8088 /health" lb_ok
    check postgres "127.0.0.1:5433 database cctelegram" pg_ok
    check prometheus "127.0.0.1:9090 targets up: $(targets_up || true)/$NTARGETS" prom_ok
    return $bad
}

sshd_pids() { # HOST : every sshd process in the host's netns
    local p
    for p in $(ip netns pids "$1"); do
        [ "$(cat "/proc/$p/comm" 2>/dev/null)" = sshd ] && echo "$p"
    done
    return 0
}

cmd_signal_sshd() { # HOST STOP|CONT
    need_root
    local h=$1 sig=$2 pids=() listener
    netns_exists "$h" || die "no such lab host: $h"
    listener=$(host_pid "$h")
    # the listener first, so no new connection child appears while the others are signalled;
    # then a second pass for a child forked just before
    kill "-$sig" "$listener"
    mapfile -t pids < <(sshd_pids "$h")
    kill "-$sig" "${pids[@]}" 2>/dev/null || true
    mapfile -t pids < <(sshd_pids "$h")
    kill "-$sig" "${pids[@]}" 2>/dev/null || true
    if [ "$sig" = STOP ]; then echo "froze ${#pids[@]} sshd processes on $h"; else echo "thawed ${#pids[@]} sshd processes on $h"; fi
}

case "${1:-}" in
install) cmd_install ;;
start) cmd_start ;;
stop) cmd_stop ;;
status) cmd_status ;;
env)
    [ -f "$LAB/lab.env" ] || die "no $LAB/lab.env: run $0 start"
    echo "$LAB/lab.env"
    ;;
exec)
    [ $# -ge 3 ] || die "usage: $0 exec HOST CMD..."
    need_root
    h=$2
    shift 2
    in_host "$h" "$@"
    ;;
freeze) cmd_signal_sshd "${2:?usage: $0 freeze HOST}" STOP ;;
thaw) cmd_signal_sshd "${2:?usage: $0 thaw HOST}" CONT ;;
*)
    sed -n '2,10s/^# \{0,1\}//p' "$0" >&2
    exit 2
    ;;
esac
