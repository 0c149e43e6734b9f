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
# Bridge rbkbr0 10.200.0.1/24, three app hosts mcp-01..03 (10.200.0.11-13) and the database
# host db-01 (10.200.0.21). Each host is a network namespace with its own UTS, mount and PID
# namespaces: own hostname, /etc, /var/log, /run, /tmp, a 16 MiB /var/lib/cctelegram, and its
# own `ps`. Each runs sshd :22 (user runbook with sudo -n; root on mcp-03) and a node exporter
# :9100; under the daemonless systemctl, the app hosts run cctelegram-mcp :8080,
# cctelegram-bridge :8081 (the demo binary) and nginx :80, and db-01 runs postgresql :5432
# (its data under the lab dir). In the root namespace: Prometheus 127.0.0.1:9090 (alerting rules
# in templates/alerts.yml; 7 days of generated history from lab/history.py, its facts in
# $LAB/prometheus/history.json) and an nginx load balancer on 10.200.0.1:8088 and
# 127.0.0.1:8088. Everything lives under $RUNBOOK_LAB_DIR
# (/tmp/runbook-lab); the demo binary comes from $RUNBOOK_DEMO_BIN
# (default target/debug/cctelegram-demo). Config files are in lab/templates/.
# Docker Swarm: the real docker CLI talks to lab/docker-standin.py on 127.0.0.1:23750, a
# recording stand-in of the Engine API (not Docker; no daemon runs), which appends every
# request to $LAB/docker/requests.jsonl.
# Notifications: lab/notify-standin.py on 127.0.0.1:8099, a recording stand-in (not the real
# services; nothing leaves the machine) answering like the Slack Web API, PagerDuty Events v2,
# Atlassian Statuspage and the Telegram Bot API (a bot per telegram*bot_token secret), which
# appends every request with its answer to $LAB/notify/requests.jsonl.
# AWS: the real aws CLI talks to the moto server on 127.0.0.1:5000, a local ELBv2/EC2 emulator
# (not AWS) with the target group cctelegram-tg of mcp-01..03's instances (lab/aws.sh).
set -Eeuo pipefail
trap 'log "ERROR: \"$BASH_COMMAND\" failed (exit $?) in ${FUNCNAME[0]:-main}, line $LINENO"' ERR

LAB=${RUNBOOK_LAB_DIR:-/tmp/runbook-lab}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
DEMO_BIN=${RUNBOOK_DEMO_BIN:-${CARGO_TARGET_DIR:-$HERE/../target}/debug/cctelegram-demo}
HOSTS=(mcp-01 mcp-02 mcp-03) # the app hosts; the templates list the same three
DB_HOST=db-01                # PostgreSQL's host
ALL_HOSTS=("${HOSTS[@]}" "$DB_HOST")
NET=10.200.0
BR=rbkbr0
SUDOERS=/etc/sudoers.d/runbook-lab
# jq and net-tools: the runbook's own log analyses and diagnostics script use jq and netstat
PKGS=(iproute2 procps curl python3 openssh-server openssh-client sudo nginx prometheus
    prometheus-node-exporter postgresql apache2-utils jq net-tools python3-venv)
SYSTEMCTL=$LAB/pkg/systemctl-root/usr/bin/systemctl
NTARGETS=11 # prometheus itself + node, cctelegram and cctelegram-bridge on each app host + node on db-01
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

log() { printf '[lab %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
ms() { date +%s%3N; }
hip() { case $1 in db-*) echo "$NET.$((20 + 10#${1#db-}))" ;; *) echo "$NET.$((10 + 10#${1#mcp-}))" ;; esac; }
host_units() { if [ "$1" = "$DB_HOST" ]; then echo postgresql; else echo cctelegram-mcp cctelegram-bridge nginx; fi; }
all_active() { host_units "$1" | sed 's/[^ ]\+/active/g'; } # what `systemctl is-active` says when all run
ssh_user() { if [ "$1" = mcp-03 ]; then echo root; else echo runbook; fi; } # mcp-03: the root path
rand_hex() { od -An -N"$1" -tx1 /dev/urandom | tr -d ' \n'; }
netns_exists() { [ -e "/run/netns/$1" ]; }
pgbin() { find /usr/lib/postgresql -maxdepth 2 -name bin 2>/dev/null | sort -V | tail -1; }
db_password() { sed -n 's|^postgres://runbook:\([0-9a-f]*\)@.*|\1|p' "$LAB/secrets/database_url" 2>/dev/null || true; }

# shellcheck source=lab/aws.sh
. "$HERE/aws.sh" # the AWS load balancer: aws CLI + moto server

# render TEMPLATE DEST [HOST]: a file of lab/templates with @LAB@, @NET@ and @HOST@ filled in
render() { sed -e "s|@LAB@|$LAB|g" -e "s|@NET@|$NET|g" -e "s|@HOST@|${3:-}|g" "$HERE/templates/$1" >"$2"; }

# Gone once it is a zombie: PID 1 of this machine reaps orphans only every ~1.5 s.
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

# bg NAME CMD... : a lab daemon in its own session (a caller that kills its process group must
# not take the lab down), stdio off any pipe, PID in run/NAME.pid
bg() {
    setsid "${@:2}" </dev/null >"$LAB/logs/$1.log" 2>&1 &
    echo $! >"$LAB/run/$1.pid"
}

host_pid() { # the host's PID 1 (sshd) as seen from here
    local pid
    pid=$(cat "$LAB/run/sshd-$1.pid" 2>/dev/null) || die "$1 is not running (lab.sh start)"
    alive "$pid" || die "$1: its sshd (PID $pid) is gone"
    echo "$pid"
}

# in_host HOST CMD... : run CMD in HOST's network, mount, UTS and PID namespaces
in_host() { nsenter -t "$(host_pid "$1")" -n -m -u -p --wd=/ -- "${@:2}"; }

# the API key goes to curl on stdin, never on a command line (ps shows those)
curl_key() { curl -s -H @- "$@" <<<"X-API-Key: $(cat "$LAB/secrets/api_key")"; }
http_code() { curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$1"; }
http_code_key() { curl_key -o /dev/null -w '%{http_code}' --max-time 2 "$1"; }

# ---------------------------------------------------------------------------------------------
# preflight and install

need_root() {
    [ "$(id -u)" = 0 ] || die "run as root (network namespaces, mounts, sshd)"
    case $LAB in
    /*[[:space:]\"\'\$\`\\]*) die "RUNBOOK_LAB_DIR must not contain spaces or quotes: $LAB" ;;
    /*) ;;
    *) die "RUNBOOK_LAB_DIR must be an absolute path: $LAB" ;;
    esac
}

missing_pkgs() {
    local installed p
    installed=" $(dpkg-query -W -f='${Package}=${db:Status-Status} ' "${PKGS[@]}" 2>/dev/null || true)"
    for p in "${PKGS[@]}"; do [[ $installed == *" $p=installed "* ]] || echo "$p"; done
}

preflight() {
    need_root
    local probe=rbk-probe-$$ missing
    { ip netns add "$probe" && ip netns del "$probe"; } 2>/dev/null ||
        die "'ip netns' does not work here (needs root with CAP_SYS_ADMIN and a writable /run/netns)"
    missing=$(missing_pkgs | xargs)
    [ -z "$missing" ] || die "missing packages: $missing (run: $0 install)"
    grep -qs 'runbook-lab patch' "$SYSTEMCTL" || die "no daemonless systemctl in $LAB/pkg (run: $0 install)"
    command -v docker >/dev/null || die "no docker CLI (run: $0 install)"
    [ -n "$(pgbin)" ] || die "no PostgreSQL server under /usr/lib/postgresql (run: $0 install)"
    aws_installed || die "no aws CLI / moto server in $AWS_VENV (run: $0 install)"
    [ -x "$DEMO_BIN" ] || die "no demo binary $DEMO_BIN: cargo build --bin cctelegram-demo (or set RUNBOOK_DEMO_BIN)"
}

cmd_install() {
    need_root
    local t0 missing made_policy=0 out
    t0=$(ms)
    missing=$(missing_pkgs | xargs)
    if [ -n "$missing" ]; then
        log "installing: $missing"
        # Package scripts must not start daemons on the default ports (22, 80, 5432, 9090, 9100):
        # a policy-rc.d that exits 101 forbids it, with or without systemd.
        if [ ! -e /usr/sbin/policy-rc.d ]; then
            printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
            chmod 755 /usr/sbin/policy-rc.d
            made_policy=1
        fi
        apt-get update -qq
        out=$(DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
            "${PKGS[@]}" 2>&1) || { echo "$out" >&2; die "apt-get install failed"; }
        [ $made_policy = 0 ] || rm -f /usr/sbin/policy-rc.d
    fi
    # Debian's "systemctl" package is docker-systemctl-replacement, one Python script. It
    # Conflicts: systemd (installing it would remove systemd and 13 more packages), so it is
    # only downloaded and extracted into the lab dir.
    if ! grep -qs 'runbook-lab patch' "$SYSTEMCTL"; then
        mkdir -p "$LAB/pkg"
        rm -rf "$LAB/pkg/systemctl-root" "$LAB"/pkg/systemctl_*.deb
        out=$(cd "$LAB/pkg" && { apt-get download -q systemctl 2>&1 ||
            { apt-get update -qq && apt-get download -q systemctl 2>&1; }; }) ||
            { echo "$out" >&2; die "apt-get download systemctl failed"; }
        dpkg-deb -x "$LAB"/pkg/systemctl_*.deb "$LAB/pkg/systemctl-root"
        patch_systemctl
    fi
    command -v docker >/dev/null || install_docker_cli
    install_aws
    log "install done in $(($(ms) - t0)) ms"
}

# The docker CLI only (machines of this kind ship it in /usr/local/bin). Debian's docker.io
# also carries the daemon and pulls in containerd, runc and iptables: it is downloaded, and
# only its /usr/bin/docker is extracted. No Docker daemon is installed or started.
install_docker_cli() {
    local d=$LAB/pkg/docker out
    rm -rf "$d"
    mkdir -p "$d"
    out=$(cd "$d" && { apt-get download -q docker.io 2>&1 ||
        { apt-get update -qq && apt-get download -q docker.io 2>&1; }; }) ||
        { echo "$out" >&2; die "apt-get download docker.io failed"; }
    dpkg-deb --fsys-tarfile "$d"/docker.io_*.deb | tar -x -C "$d" ./usr/bin/docker
    install -m 755 "$d/usr/bin/docker" /usr/local/bin/docker
    rm -rf "$d"
    log "installed the docker client from docker.io: $(docker --version)"
}

# The replacement keeps only the last `-p NAME`; real systemd takes `-p A,B,C` and repeated
# -p, as in `systemctl show -p ActiveState,SubState,MainPID UNIT`.
patch_systemctl() {
    sed -i \
        -e 's/dest="unit_property", default=_unit_property,/dest="unit_property", action="append", default=None,/' \
        -e 's/^    _unit_property = opt.unit_property$/    _unit_property = [p for v in (opt.unit_property or []) for p in v.split(",") if p] or None  # runbook-lab patch/' \
        -e 's/if self._unit_property != var:/if var not in self._unit_property:/' \
        -e 's/conf.getlist("Service", _unit_property)/conf.getlist("Service", _unit_property[0])/' \
        "$SYSTEMCTL"
    [ "$(grep -c -e 'action="append", default=None' -e 'runbook-lab patch' \
        -e 'if var not in self._unit_property' -e '_unit_property\[0\]' "$SYSTEMCTL")" = 4 ] ||
        die "patching systemctl -p failed (a new upstream version?)"
}

# ---------------------------------------------------------------------------------------------
# teardown: stop, and the first step of start

# stop_pids PID... : CONT (it may be frozen), TERM, wait up to 5 s, KILL
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
    if [ -f "$LAB/run/$1.pid" ]; then stop_pids "$(cat "$LAB/run/$1.pid")"; fi
    rm -f "$LAB/run/$1.pid"
}

stop_postgres() {
    local data=$LAB/pg/data
    [ -f "$data/postmaster.pid" ] || return 0
    runuser -u postgres -- "$(pgbin)/pg_ctl" -D "$data" -m fast -w -t 10 stop >/dev/null 2>&1 ||
        stop_pids "$(head -1 "$data/postmaster.pid")"
}

# netns_pids: every process in a lab netns, found by name and by the netns inode recorded at
# start (which still finds them after the name was deleted; a file from before the last boot
# is ignored, since inode numbers are reused)
netns_pids() {
    local h f ino inos=() boot
    boot=$(($(date +%s) - $(cut -d. -f1 /proc/uptime)))
    for h in "${ALL_HOSTS[@]}"; do
        if netns_exists "$h"; then ip netns pids "$h"; fi
        f=$LAB/run/netns-$h.ino
        if [ -f "$f" ] && [ "$(stat -c %Y "$f")" -gt "$boot" ]; then inos+=("$(cat "$f")"); fi
    done
    [ ${#inos[@]} -gt 0 ] || return 0
    ino=$(IFS='|' && echo "${inos[*]}")
    # shellcheck disable=SC2012 # one ls rather than a readlink per process
    { ls -l /proc/[0-9]*/ns/net 2>/dev/null || true; } |
        sed -n -E "s#.* /proc/([0-9]+)/ns/net -> net:\[($ino)\]\$#\1#p"
}

teardown() {
    local h f pids=()
    # Root-namespace clients of the hosts first: a scrape or proxy connection orphaned in a
    # host's netns keeps retransmitting into the deleted bridge and keeps that netns and its
    # veth alive for minutes (lab-notes, teardown gotcha).
    stop_pidfile prometheus
    stop_pidfile lb
    # Everything in a host's netns is the lab's (PID 1 = sshd, sessions, services, exporter).
    # All hosts at once: one wait instead of three.
    mapfile -t pids < <(netns_pids | sort -u)
    stop_pids "${pids[@]}"
    for h in "${ALL_HOSTS[@]}"; do
        ip link del "veth-$h" 2>/dev/null || true # both ends, even if the netns lingers
        if netns_exists "$h"; then ip netns del "$h"; fi
        rm -f "$LAB/run/sshd-$h.pid" "$LAB/run/unshare-$h.pid"
    done
    ip link del "$BR" 2>/dev/null || true
    stop_postgres # a root-namespace cluster left by an older lab.sh
    for f in "$LAB"/run/*.pid; do if [ -f "$f" ]; then stop_pidfile "$(basename "$f" .pid)"; fi; done
    rm -f "$SUDOERS"
    if [ -f "$LAB/run/made-var-lib-cctelegram" ]; then
        rmdir /var/lib/cctelegram 2>/dev/null || true
        rm -f "$LAB/run/made-var-lib-cctelegram"
    fi
}

# leftovers: whatever of the lab still exists, one line each (nothing = clean)
leftovers() {
    local h pid rest
    for h in "${ALL_HOSTS[@]}"; do
        ! netns_exists "$h" || echo "netns $h"
        ! ip link show "veth-$h" >/dev/null 2>&1 || echo "link veth-$h"
    done
    ! ip link show "$BR" >/dev/null 2>&1 || echo "bridge $BR"
    [ ! -e "$SUDOERS" ] || echo "file $SUDOERS"
    netns_pids | sort -u | while read -r pid; do
        if alive "$pid"; then echo "process $pid $(tr '\0' ' ' <"/proc/$pid/cmdline")"; fi
    done
    # root-namespace daemons of the lab: each names the lab dir on its command line
    ps -eo pid=,comm=,args= | awk -v lab="$LAB/" '$2 ~ /^(prometheus|nginx|postgres|sleep|python3|moto_server)/ && index($0, lab)' |
        while read -r pid rest; do if alive "$pid"; then echo "process $pid $rest"; fi; done
}

cmd_stop() {
    need_root
    local t0 left
    t0=$(ms)
    teardown
    left=$(leftovers)
    [ -z "$left" ] || die "stop left these behind:"$'\n'"$left"
    rm -f "$LAB"/run/netns-*.ino
    log "lab stopped in $(($(ms) - t0)) ms"
}

# ---------------------------------------------------------------------------------------------
# start: the pieces

ports_free() { # the root-namespace ports must be ours to take
    local p used
    for p in 9090 8088 23750 8099 "$AWS_PORT"; do
        used=$(ss -Hltnp "( sport = :$p )")
        [ -z "$used" ] || die "port $p is already in use: $used"
    done
}

prepare_dirs() {
    mkdir -p "$LAB"
    chmod 755 "$LAB" # postgres must traverse it
    # the old tree is deleted in the background: 3 copies of /etc take ~0.7 s on this disk
    mkdir -p "$LAB/.old.$$"
    mv "$LAB/hosts" "$LAB/logs" "$LAB/lb" "$LAB/prometheus" "$LAB/opt" "$LAB/pg" "$LAB/.old.$$/" 2>/dev/null || true
    (setsid nice rm -rf "$LAB"/.old.* </dev/null >/dev/null 2>&1 &)
    mkdir -p "$LAB"/{run,logs,bin,hosts,state,lb/logs,lb/tmp,prometheus/rules,opt/cctelegram/bin}
    install -m 755 "$HERE/host-init.sh" "$HERE/journalctl" "$LAB/bin/"
    install -m 644 "$HERE/root-bashrc" "$LAB/bin/"
    install -m 755 "$DEMO_BIN" "$LAB/opt/cctelegram/bin/cctelegram-demo"
    # one binary, two names: `pkill -f cctelegram-bridge` and `ps | grep cctelegram` find them
    ln -s cctelegram-demo "$LAB/opt/cctelegram/bin/cctelegram-mcp"
    ln -s cctelegram-demo "$LAB/opt/cctelegram/bin/cctelegram-bridge"
    if [ ! -d /var/lib/cctelegram ]; then # mountpoint of each host's own small tmpfs
        mkdir /var/lib/cctelegram
        touch "$LAB/run/made-var-lib-cctelegram"
    fi
}

# The daemonless systemctl takes the boot time from the mtime of /proc/1/status. When the
# kernel drops that inode (drop_caches, memory pressure) the mtime jumps to "now": the script
# believes the machine rebooted and reports every service inactive. An open fd pins the inode.
# This holder starts before any service and lives as long as the lab. Each host has its own
# PID namespace and /proc, and host-init.sh starts one more holder there (the one that matters
# for the hosts' services).
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
host_holder_ok() { # HOST
    local p
    for p in $(ip netns pids "$1"); do
        [ "$(cat "/proc/$p/comm")" = sleep ] && [ "$(readlink "/proc/$p/fd/3")" = /proc/1/status ] && return 0
    done
    return 1
}

make_secrets() { # kept across restarts; no trailing newline, so naive readers get the value
    local s=$LAB/secrets pw
    mkdir -p -m 700 "$s"
    [ -s "$s/api_key" ] || (umask 077 && printf '%s' "$(rand_hex 24)" >"$s/api_key")
    pw=$(db_password)
    [ -n "$pw" ] || pw=$(rand_hex 16)
    (umask 077 && printf 'postgres://runbook:%s@%s:5432/cctelegram' "$pw" "$(hip "$DB_HOST")" >"$s/database_url")
    # the Telegram Bot API stand-in only answers this token (so a test proves it was sent)
    [ -s "$s/telegram_bot_token" ] ||
        (umask 077 && printf '%s:%s' "$((RANDOM * 32768 + RANDOM))" "$(rand_hex 16)" >"$s/telegram_bot_token")
    # the notification stand-in's credentials (lab/notify-standin.py checks each one)
    [ -s "$s/slack_bot_token" ] || (umask 077 && printf 'xoxb-%s' "$(rand_hex 24)" >"$s/slack_bot_token")
    [ -s "$s/pagerduty_routing_key" ] || (umask 077 && printf '%s' "$(rand_hex 16)" >"$s/pagerduty_routing_key")
    [ -s "$s/statuspage_api_key" ] || (umask 077 && printf '%s' "$(rand_hex 24)" >"$s/statuspage_api_key")
    [ -s "$s/telegram_approval_bot_token" ] ||
        (umask 077 && printf '%s:%s' "$((RANDOM * 32768 + RANDOM))" "$(rand_hex 16)" >"$s/telegram_approval_bot_token")
}

make_ssh_keys() { # kept across restarts, so a running client's known_hosts stays valid
    local d=$LAB/ssh h
    mkdir -p -m 700 "$d" "$d/hostkeys"
    [ -f "$d/client_key" ] || ssh-keygen -q -t ed25519 -N '' -C runbook-lab-client -f "$d/client_key"
    : >"$d/known_hosts"
    : >"$d/ssh_config"
    for h in "${ALL_HOSTS[@]}"; do
        [ -f "$d/hostkeys/$h" ] || ssh-keygen -q -t ed25519 -N '' -C "root@$h" -f "$d/hostkeys/$h"
        echo "$(hip "$h") $(cut -d' ' -f1,2 "$d/hostkeys/$h.pub")" >>"$d/known_hosts"
        printf 'Host %s\n  HostName %s\n  User %s\n' "$h" "$(hip "$h")" "$(ssh_user "$h")" >>"$d/ssh_config"
    done
    printf 'Host mcp-* db-*\n  IdentityFile %s\n  IdentitiesOnly yes\n  UserKnownHostsFile %s\n  StrictHostKeyChecking yes\n  BatchMode yes\n' \
        "$d/client_key" "$d/known_hosts" >>"$d/ssh_config"
}

# Prometheus with the alerting rules of templates/alerts.yml and, in a new data dir, 7 days of
# generated history (lab/history.py) backfilled before it starts; the facts tests expect
# (shapes, their absolute start and end) are in $LAB/prometheus/history.json. Retention 15d,
# else the history's block is deleted at once.
start_prometheus() {
    local p=$LAB/prometheus
    render prometheus.yml "$p/prometheus.yml"
    render alerts.yml "$p/alerts.yml"
    promtool check rules "$p/alerts.yml" >/dev/null
    promtool check config "$p/prometheus.yml" >/dev/null
    # once per data dir: start-component keeps the blocks and must not add the history twice
    compgen -G "$p/data/*/meta.json" >/dev/null || backfill_history
    bg prometheus prometheus --config.file="$p/prometheus.yml" \
        --storage.tsdb.path="$p/data" --storage.tsdb.retention.time=15d \
        --web.listen-address=127.0.0.1:9090 --web.enable-lifecycle --log.level=warn
}

# The history ends 5 minutes before now (on a minute): the head refuses every sample older
# than the newest block's end (all scrapes would be dropped as "out of bounds"), and rate
# windows up to [5m] right after start see live samples only. The largest block range
# promtool knows (2h*3^9) makes one block: promtool reads the file once per block (~1 s for
# one, ~36 s for the default 2 h blocks).
backfill_history() {
    local p=$LAB/prometheus t0
    t0=$(ms)
    mkdir -p "$p/data"
    python3 "$HERE/history.py" --end "$(($(date +%s) - 300))" --out "$p/history.om" --facts "$p/history.json"
    promtool tsdb create-blocks-from openmetrics --max-block-duration=39366h -q "$p/history.om" "$p/data" >/dev/null
    rm -f "$p/history.om"
    log "prometheus: 7 days of history backfilled in $(($(ms) - t0)) ms ($p/history.json)"
}

ensure_user() {
    id -u runbook >/dev/null 2>&1 || useradd -m -s /bin/bash -c "runbook lab" runbook
    usermod -p '*' runbook # sshd with UsePAM no refuses even key logins when the password is '!'
    visudo -cqf "$HERE/templates/sudoers" || die "lab/templates/sudoers is invalid"
    install -m 440 "$HERE/templates/sudoers" "$SUDOERS"
}

setup_network() {
    local h
    ip link add "$BR" type bridge
    ip addr add "$NET.1/24" dev "$BR"
    ip link set "$BR" up
    for h in "${ALL_HOSTS[@]}"; do
        ip netns add "$h"
        stat -L -c %i "/run/netns/$h" >"$LAB/run/netns-$h.ino" # for leftovers()
        ip link add "veth-$h" type veth peer name eth0 netns "$h"
        ip link set "veth-$h" master "$BR" up
        ip -n "$h" addr add "$(hip "$h")/24" dev eth0
        ip -n "$h" link set eth0 up
        ip -n "$h" link set lo up
        # no default route on purpose: a host reaches only 10.200.0.0/24
    done
}

# build_host HOST: the host's /etc (a copy of the machine's, taken after the user and the
# sudoers file exist) and /var/log, which host-init.sh bind-mounts
build_host() {
    local h=$1 d=$LAB/hosts/$1 e=$LAB/hosts/$1/etc u
    mkdir -p "$d"/log/{nginx,journal,cctelegram}
    chmod 755 "$d/log/cctelegram" # the runbook user reads the service logs
    cp -a /etc "$e"
    echo "$h" >"$e/hostname"
    { # sudo resolves the hostname, else "unable to resolve host"
        printf '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n%s\tlab-gateway\n' "$NET.1"
        for u in "${ALL_HOSTS[@]}"; do printf '%s\t%s\n' "$(hip "$u")" "$u"; done
    } >"$e/hosts"

    rm -f "$e"/ssh/ssh_host_*
    install -m 600 "$LAB/ssh/hostkeys/$h" "$e/ssh/ssh_host_ed25519_key"
    install -m 644 "$LAB/ssh/hostkeys/$h.pub" "$e/ssh/ssh_host_ed25519_key.pub"
    mkdir -p -m 755 "$e/ssh/authorized_keys"
    for u in root runbook; do install -m 644 "$LAB/ssh/client_key.pub" "$e/ssh/authorized_keys/$u"; done
    render sshd_config "$e/ssh/sshd_config" "$h"
    mkdir -p /run/sshd # sshd -t insists on its privilege separation dir (hosts have their own)
    /usr/sbin/sshd -t -f "$e/ssh/sshd_config" -h "$e/ssh/ssh_host_ed25519_key"
    if [ "$h" = "$DB_HOST" ]; then
        build_db_host "$h"
        return
    fi

    sed -i 's/^worker_processes .*/worker_processes 1;/' "$e/nginx/nginx.conf"
    rm -f "$e"/nginx/sites-enabled/*
    render nginx-ratelimit.conf "$e/nginx/conf.d/ratelimit.conf"
    render nginx-site "$e/nginx/sites-available/cctelegram" "$h"
    ln -s /etc/nginx/sites-available/cctelegram "$e/nginx/sites-enabled/cctelegram"

    # only this host's units (the machine's enabled ssh, postgresql... do not run here), all
    # enabled: the daemonless systemctl answers is-active "unknown" for a unit that is not
    rm -rf "$e/systemd/system"
    mkdir -p "$e/systemd/system/multi-user.target.wants"
    for u in cctelegram-mcp cctelegram-bridge; do
        render "$u.service" "$e/systemd/system/$u.service" "$h"
        ln -s "/etc/systemd/system/$u.service" "$e/systemd/system/multi-user.target.wants/"
    done
    ln -s /lib/systemd/system/nginx.service "$e/systemd/system/multi-user.target.wants/"

    mkdir -p -m 755 "$e/cctelegram"
    install -m 600 "$LAB/secrets/api_key" "$e/cctelegram/api_key"
}

# build_db_host HOST: a fresh cluster whose data lives under the lab dir (host-init.sh binds
# $LAB/hosts/HOST/postgresql over the host's /var/lib/postgresql, Debian's layout) and a real
# unit `postgresql` running the cluster's postgres in the foreground as user postgres
build_db_host() {
    local h=$1 e=$LAB/hosts/$1/etc P=$LAB/hosts/$1/postgresql bin ver
    bin=$(pgbin)
    ver=$(basename "$(dirname "$bin")")
    mkdir -p "$P/$ver"
    chown -R postgres:postgres "$P"
    # initdb refuses to run as root; --no-sync: throwaway data, and fsync costs seconds here
    runuser -u postgres -- "$bin/initdb" -D "$P/$ver/main" -U postgres --auth-local=peer --auth-host=scram-sha-256 -E UTF8 \
        --locale=C.UTF-8 --no-sync >"$LAB/logs/initdb.log" 2>&1
    render pg_hba.conf "$P/$ver/main/pg_hba.conf"
    chown postgres:postgres "$P/$ver/main/pg_hba.conf"
    rm -rf "$e/systemd/system"
    mkdir -p "$e/systemd/system/multi-user.target.wants"
    render postgresql.service "$e/systemd/system/postgresql.service" "$h"
    sed -i -e "s|@PGBIN@|$bin|g" -e "s|@PGDATA@|/var/lib/postgresql/$ver/main|g" "$e/systemd/system/postgresql.service"
    ln -s /etc/systemd/system/postgresql.service "$e/systemd/system/multi-user.target.wants/"
}

# start_host HOST: its PID 1 (host-init.sh, which becomes sshd) in fresh namespaces. The PID
# namespace matters: without it `sudo pkill -f cctelegram-bridge` on one host kills all three.
start_host() {
    local h=$1 parent
    bg "unshare-$h" ip netns exec "$h" unshare --uts --pid --kill-child --mount-proc \
        --propagation private /bin/sh "$LAB/bin/host-init.sh" "$h" "$LAB"
    parent=$(cat "$LAB/run/unshare-$h.pid")
    wait_for "PID 1 of $h" 5 pgrep -P "$parent"
    pgrep -P "$parent" >"$LAB/run/sshd-$h.pid"
}

# start_host_services HOST: exporter and units, then wait for ssh, units and health endpoints
start_host_services() {
    local h=$1 u jobs=()
    wait_for "sshd on $h" 10 bash -c "exec 3<>/dev/tcp/$(hip "$h")/22"
    # detached inside the host, so its parent is the host's PID 1: a process whose parent is
    # outside the PID namespace (nsenter) holds the namespace's teardown up by seconds
    in_host "$h" sh -c 'setsid prometheus-node-exporter --web.listen-address=:9100 \
        --no-collector.systemd --log.level=warn </dev/null >/var/log/node-exporter.log 2>&1 &'
    # one systemctl per unit, in parallel (each start of a simple unit sleeps 0.5 s), with a
    # clean environment as if started by the init system
    for u in $(host_units "$h"); do
        in_host "$h" env -i PATH="$PATH" LANG=C.UTF-8 systemctl start "$u" \
            </dev/null >"$LAB/logs/systemctl-start-$h-$u.log" 2>&1 &
        jobs+=($!)
    done
    for u in "${jobs[@]}"; do
        wait "$u" || die "$h: systemctl start failed (see $LAB/logs/systemctl-start-$h-*.log)"
    done
    wait_for "ssh to $h" 10 ssh_ok "$h"
    wait_for "units active on $h" 10 units_active "$h"
    if [ "$h" = "$DB_HOST" ]; then
        wait_for "postgres on $h" 15 in_host "$h" runuser -u postgres -- psql -X -At -d postgres -c 'select 1'
        seed_db
    fi
    wait_for "health endpoints on $h" 10 health_ok "$h"
}

start_lb() {
    render lb-nginx.conf "$LAB/lb/nginx.conf"
    # the stand-in's token check needs the token in its config (a lab-only file, mode 600)
    sed -i "s|@TG_TOKEN@|$(cat "$LAB/secrets/telegram_bot_token")|" "$LAB/lb/nginx.conf"
    chmod 600 "$LAB/lb/nginx.conf"
    nginx -t -q -p "$LAB/lb/" -c "$LAB/lb/nginx.conf" -e "$LAB/lb/logs/error.log"
    bg lb nginx -p "$LAB/lb/" -c "$LAB/lb/nginx.conf" -e "$LAB/lb/logs/error.log" -g 'daemon off;'
}

# seed_db: role runbook (password from the secret; pg_monitor to see every session) owning
# database cctelegram, with a table whose dead tuples wait for run_database_maintenance
# (autovacuum is off for it). As postgres over db-01's own socket; the password goes on stdin.
seed_db() {
    in_host "$DB_HOST" runuser -u postgres -- psql -X -q -d postgres -v ON_ERROR_STOP=1 >/dev/null <<EOF
CREATE ROLE runbook LOGIN PASSWORD '$(db_password)' IN ROLE pg_monitor, pg_signal_backend;
CREATE DATABASE cctelegram OWNER runbook;
\\connect cctelegram
SET ROLE runbook;
CREATE TABLE messages (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, chat_id bigint NOT NULL,
    body text NOT NULL, sent_at timestamptz NOT NULL DEFAULT now()) WITH (autovacuum_enabled = false);
CREATE INDEX messages_chat_id ON messages (chat_id);
INSERT INTO messages (chat_id, body) SELECT g % 50, 'message ' || g FROM generate_series(1, 30000) g;
DELETE FROM messages WHERE id % 3 = 0;
EOF
}

# The Engine API stand-in for the docker CLI (lab/docker-standin.py; not Docker)
start_docker_standin() {
    mkdir -p "$LAB/docker"
    bg docker-standin python3 "$HERE/docker-standin.py" --listen 127.0.0.1:23750 \
        --record "$LAB/docker/requests.jsonl"
}
# its own endpoint, which is not recorded: a status check must not show up in a test's record
docker_ok() { curl -sf --max-time 2 -o /dev/null http://127.0.0.1:23750/_standin/state; }

# The notification stand-in (lab/notify-standin.py; not Slack, PagerDuty, Statuspage or
# Telegram): it reads the credentials from the secrets dir, so it starts after make_secrets
start_notify_standin() {
    mkdir -p "$LAB/notify"
    bg notify-standin python3 "$HERE/notify-standin.py" --listen 127.0.0.1:8099 \
        --record "$LAB/notify/requests.jsonl" --secrets "$LAB/secrets" --statuspage-page abc123
}
# its own endpoint, not recorded, like docker_ok's
notify_ok() { curl -sf --max-time 2 -o /dev/null http://127.0.0.1:8099/_standin/state; }

write_config() {
    render runbook-mcp.toml "$LAB/runbook-mcp.toml"
    aws_config "$LAB/runbook-mcp.toml"
    (umask 077 && cat >"$LAB/lab.env") <<EOF
# runbook lab environment (written by lab/lab.sh); holds a secret, mode 600
export RUNBOOK_LAB_DIR=$LAB
export RUNBOOK_LAB_CONFIG=$LAB/runbook-mcp.toml
export RUNBOOK_LAB_HOSTS="${ALL_HOSTS[*]}"
export RUNBOOK_LAB_DB_HOST=$DB_HOST
export RUNBOOK_LAB_SSH_CONFIG=$LAB/ssh/ssh_config
export RUNBOOK_LAB_LB_URL=http://$NET.1:8088
export PROMETHEUS_URL=http://127.0.0.1:9090
export RUNBOOK_LAB_PROM_HISTORY=$LAB/prometheus/history.json
export RUNBOOK_LAB_DOCKER_HOST=tcp://127.0.0.1:23750
export RUNBOOK_LAB_NOTIFY_URL=http://127.0.0.1:8099
export RUNBOOK_LAB_AWS_ENDPOINT=$AWS_ENDPOINT
export DATABASE_URL=$(cat "$LAB/secrets/database_url")
EOF
}

# ---------------------------------------------------------------------------------------------
# checks: readiness and status (each fails when not ready)

ssh_ok() { # HOST
    timeout 5 ssh -F /dev/null -i "$LAB/ssh/client_key" -o IdentitiesOnly=yes \
        -o UserKnownHostsFile="$LAB/ssh/known_hosts" -o StrictHostKeyChecking=yes \
        -o BatchMode=yes -o ConnectTimeout=3 "$(ssh_user "$1")@$(hip "$1")" true </dev/null
}
units_active() { # HOST : prints the states of the host's units
    local out units
    units=$(host_units "$1")
    # shellcheck disable=SC2086 # one word per unit
    out=$(in_host "$1" systemctl is-active $units 2>/dev/null | xargs)
    echo "$out"
    [ "$out" = "$(all_active "$1")" ]
}
health_ok() { # HOST
    local ip
    if [ "$1" = "$DB_HOST" ]; then pg_ok; return; fi
    ip=$(hip "$1")
    [ "$(http_code_key "http://$ip:8080/health")" = 200 ] && [ "$(http_code_key "http://$ip:8081/health")" = 200 ] &&
        [ "$(http_code "http://$ip/healthz")" = 200 ]
}
lb_ok() { [ "$(http_code_key "http://$NET.1:8088/health")" = 200 ] && [ "$(http_code_key http://127.0.0.1:8088/health)" = 200 ]; }
pg_ok() {
    [ "$(PGPASSWORD=$(db_password) psql -X -At -h "$(hip "$DB_HOST")" -p 5432 -U runbook -d cctelegram -c 'select 1' 2>/dev/null)" = 1 ]
}
targets_up() { # number of targets up
    curl -s --max-time 2 'http://127.0.0.1:9090/api/v1/query?query=sum(up)' |
        sed -n 's/.*"value":\[[^,]*,"\([0-9]*\)".*/\1/p'
}
prom_ok() { [ "$(targets_up)" = "$NTARGETS" ]; }

# ---------------------------------------------------------------------------------------------
# commands

cmd_start() {
    preflight
    local t0 h jobs=() aws_job
    t0=$(ms)
    teardown
    ports_free
    prepare_dirs
    start_holder     # before any service
    start_aws >"$LAB/logs/aws-setup.log" 2>&1 &
    aws_job=$!
    start_prometheus # early: its first scrape comes ~6 s after it starts
    make_secrets
    make_ssh_keys
    ensure_user # before /etc is copied
    setup_network
    for h in "${ALL_HOSTS[@]}"; do
        build_host "$h" &
        jobs+=($!)
    done
    for h in "${jobs[@]}"; do wait "$h" || die "preparing a host failed"; done
    jobs=()
    for h in "${ALL_HOSTS[@]}"; do
        start_host "$h"
        start_host_services "$h" &
        jobs+=($!)
    done
    start_lb
    start_docker_standin
    start_notify_standin
    wait "$aws_job" || die "the AWS emulator setup failed (see $LAB/logs/aws-setup.log)"
    write_config
    for h in "${jobs[@]}"; do wait "$h" || die "a host failed to start (see $LAB/logs)"; done
    wait_for "load balancer /health" 10 lb_ok
    wait_for "docker stand-in" 5 docker_ok
    wait_for "notify stand-in" 5 notify_ok
    log "hosts ready (+$(($(ms) - t0)) ms); waiting for Prometheus' first scrapes"
    wait_for "prometheus: all $NTARGETS targets up" 30 prom_ok
    log "lab up in $(($(ms) - t0)) ms; config $LAB/runbook-mcp.toml; env: . $LAB/lab.env"
}

cmd_status() {
    need_root
    local bad=0 h states
    check() { # NAME DETAIL CMD... : one line, ok or FAIL
        if "${@:3}" >/dev/null 2>&1; then printf 'ok    %-20s %s\n' "$1" "$2"; else
            printf 'FAIL  %-20s %s\n' "$1" "$2"
            bad=1
        fi
    }
    check proc1-holder "/proc/1/status held open" holder_ok
    check bridge "$BR $NET.1/24" ip link show "$BR"
    for h in "${ALL_HOSTS[@]}"; do
        if ! netns_exists "$h" || ! alive "$(cat "$LAB/run/sshd-$h.pid" 2>/dev/null || echo 0)"; then
            check "$h" "netns or PID 1 (sshd) missing" false
            continue
        fi
        check "$h proc1-holder" "the host's /proc/1/status held open" host_holder_ok "$h"
        check "$h ssh" "$(ssh_user "$h")@$(hip "$h"):22" ssh_ok "$h"
        states=$(units_active "$h" || true)
        check "$h units" "$(host_units "$h"): $states" test "$states" = "$(all_active "$h")"
        if [ "$h" = "$DB_HOST" ]; then
            check "$h postgres" "runbook@$(hip "$h"):5432/cctelegram" health_ok "$h"
        else
            check "$h health" ":8080/health :8081/health :80/healthz" health_ok "$h"
        fi
        check "$h node-exporter" ":9100/metrics" test "$(http_code "http://$(hip "$h"):9100/metrics")" = 200
    done
    check load-balancer "$NET.1:8088 127.0.0.1:8088 /health" lb_ok
    check docker-standin "127.0.0.1:23750 Engine API stand-in (not Docker)" docker_ok
    check notify-standin "127.0.0.1:8099 Slack/PagerDuty/Statuspage/Telegram stand-in (not them)" notify_ok
    check aws-emulator "$AWS_ENDPOINT moto (not AWS): $AWS_TG_NAME with ${#HOSTS[@]} targets" aws_targets_ok
    check prometheus "127.0.0.1:9090 targets up: $(targets_up || true)/$NTARGETS" prom_ok
    return $bad
}

sshd_pids() { # HOST : every sshd process in the host's netns
    local p
    for p in $(ip netns pids "$1"); do
        if [ "$(cat "/proc/$p/comm" 2>/dev/null)" = sshd ]; then echo "$p"; fi
    done
}

# freeze/thaw: the listener first, so no new connection child appears meanwhile, then every
# sshd of the host, twice, for a child forked just before the listener stopped
cmd_signal_sshd() { # HOST STOP|CONT
    need_root
    local h=$1 sig=$2 pids=()
    netns_exists "$h" || die "no such lab host: $h"
    kill "-$sig" "$(host_pid "$h")"
    mapfile -t pids < <(sshd_pids "$h")
    kill "-$sig" "${pids[@]}" 2>/dev/null || true
    mapfile -t pids < <(sshd_pids "$h")
    kill "-$sig" "${pids[@]}" 2>/dev/null || true
    echo "$([ "$sig" = STOP ] && echo froze || echo thawed) ${#pids[@]} sshd processes on $h"
}

# stop-component/start-component: take one root-namespace component down and back, for fault
# tests (the hosts have their own: `exec HOST systemctl stop ...`)
cmd_component() { # stop|start NAME
    need_root
    case "$2" in
    prometheus)
        if [ "$1" = stop ]; then
            stop_pidfile prometheus
        else
            start_prometheus
            wait_for "prometheus: all $NTARGETS targets up" 30 prom_ok
        fi
        ;;
    *) die "unknown component: $2 (known: prometheus)" ;;
    esac
}

cmd_exec() { # HOST CMD... ; exec: the command's exit status is ours, and no ERR trap noise
    need_root
    netns_exists "$1" || die "no such lab host: $1"
    exec nsenter -t "$(host_pid "$1")" -n -m -u -p --wd=/ -- "${@:2}"
}

# Starting or stopping the lab under someone else's test run breaks it: `start` and `stop`
# refuse while scripts/test.sh holds its lock (that run itself sets RUNBOOK_LAB_LOCKED=1). Only
# checked, never held here: daemons started below would inherit the descriptor and keep it.
lab_lock() {
    [ "${RUNBOOK_LAB_LOCKED:-}" = 1 ] && return 0
    flock -n "$LAB.lock" true || die "the lab is in use by a test run (scripts/test.sh holds $LAB.lock); wait for it to finish"
}

case "${1:-}" in
install) cmd_install ;;
start) lab_lock && cmd_start ;;
stop) lab_lock && cmd_stop ;;
status) cmd_status ;;
env) if [ -f "$LAB/lab.env" ]; then echo "$LAB/lab.env"; else die "no $LAB/lab.env: run $0 start"; fi ;;
exec) if [ $# -ge 3 ]; then cmd_exec "${@:2}"; else die "usage: $0 exec HOST CMD..."; fi ;;
freeze) cmd_signal_sshd "${2:?usage: $0 freeze HOST}" STOP ;;
thaw) cmd_signal_sshd "${2:?usage: $0 thaw HOST}" CONT ;;
stop-component) cmd_component stop "${2:?usage: $0 stop-component prometheus}" ;;
start-component) cmd_component start "${2:?usage: $0 start-component prometheus}" ;;
*) sed -n '3,11s/^# \{0,1\}//p' "$0" >&2 && exit 2 ;;
esac
