#!/usr/bin/env bash
# Times the incident runbook's four log pipelines ("Log Analysis Procedures" in
# incident-response-runbook.md) on DIR/application.log and DIR/security.log, as written:
# plain bash, no pipefail, only /var/log/cctelegram/ replaced by DIR (the pipelines run with
# DIR as the working directory).
#
#   benches/runbook_pipelines.sh DIR        (files from benches/loggen.py)
#
# Env: OUT_DIR (default DIR/pipeline-out) keeps each pipeline's full stdout/stderr and
# results.tsv; WARM=0 skips reading both logs once first (by default every pipeline runs
# with the logs in the page cache, as a Rust run after it would).
#
# Per pipeline: wall seconds and user+sys CPU seconds (GNU time), max_rss = the largest RSS
# of any single process in the pipeline (GNU time's %M is the child's ru_maxrss, which
# for a waited-for process tree is the max over the processes, not their sum), and
# sum_rss = the peak of the summed RSS of all the pipeline's processes, sampled from /proc
# every 0.1 s (so it can miss short spikes; the sampler costs a few % of one core).
set -u

if [ $# -ne 1 ] || [ ! -f "$1/application.log" ] || [ ! -f "$1/security.log" ]; then
    echo "usage: $0 DIR   (DIR/application.log and DIR/security.log must exist)" >&2
    exit 2
fi
DIR=$(cd "$1" && pwd)
OUT_DIR=${OUT_DIR:-$DIR/pipeline-out}
mkdir -p "$OUT_DIR"
OUT_DIR=$(cd "$OUT_DIR" && pwd)
for tool in grep awk sort uniq paste head jq python3; do
    command -v "$tool" >/dev/null || { echo "missing: $tool (jq: apt-get install -y jq)" >&2; exit 1; }
done
GNU_TIME=
if [ -x /usr/bin/time ] && /usr/bin/time -f '%e' true 2>/dev/null; then
    GNU_TIME=/usr/bin/time
fi

# The pipelines, verbatim apart from the paths (the runbook's line continuations joined).
NAMES=(error_pattern security_events performance rate_limit)
read -r -d '' P1 <<'EOF'
grep -E "(ERROR|CRITICAL|FATAL)" application.log | awk '{print $1, $2}' | sort | uniq -c | sort -nr
EOF
read -r -d '' P2 <<'EOF'
grep "SECURITY" security.log | jq -r '.timestamp, .message, .context.client_ip' | paste - - - | sort | uniq -c | sort -nr
EOF
read -r -d '' P3 <<'EOF'
grep "duration" application.log | jq -r '.context.duration' | awk '{sum+=$1; count++} END {print "Avg:", sum/count, "ms"}'
EOF
read -r -d '' P4 <<'EOF'
grep "RATE_LIMIT_EXCEEDED" security.log | jq -r '.context.client_ip' | sort | uniq -c | sort -nr | head -10
EOF
PIPES=("$P1" "$P2" "$P3" "$P4")

# Peak of the summed RSS (MiB) of ROOT's descendants (ROOT itself excluded: it is the timer).
read -r -d '' SAMPLER <<'EOF'
import os, sys, time
root = int(sys.argv[1])
page = os.sysconf("SC_PAGE_SIZE")
peak = 0
while os.path.exists("/proc/%d" % root):
    parent = {}
    for p in os.listdir("/proc"):
        if p.isdigit():
            try:
                with open("/proc/%s/stat" % p) as f:
                    s = f.read()
                parent[int(p)] = int(s[s.rindex(")") + 2:].split()[1])
            except (OSError, ValueError):
                pass
    tree, frontier = set(), {root}
    while frontier:
        frontier = {p for p, pp in parent.items() if pp in frontier} - tree
        tree |= frontier
    total = 0
    for p in tree:
        try:
            with open("/proc/%d/statm" % p) as f:
                total += int(f.read().split()[1]) * page
        except (OSError, ValueError, IndexError):
            pass
    peak = max(peak, total)
    time.sleep(0.1)
print("%.1f" % (peak / 1048576))
EOF

# Fallback timer without GNU time: wall, CPU and RUSAGE_CHILDREN ru_maxrss (max over any
# single child process, like GNU time's %M).
read -r -d '' PYTIMER <<'EOF'
import resource, subprocess, sys, time
out, pipeline = sys.argv[1], sys.argv[2]
t0 = time.monotonic()
rc = subprocess.run(["bash", "-c", pipeline]).returncode
wall = time.monotonic() - t0
ru = resource.getrusage(resource.RUSAGE_CHILDREN)
with open(out, "w") as f:
    f.write("%.2f %.2f %.2f %d %d\n" % (wall, ru.ru_utime, ru.ru_stime, ru.ru_maxrss, rc))
EOF

cd "$DIR" || exit 1
{
    echo "# $(date -u +%FT%TZ) $(uname -srm), $(nproc) CPUs, LANG=${LANG:-} LC_ALL=${LC_ALL:-}"
    echo "# $(bash --version | head -1)"
    echo "# $(grep --version | head -1); $(jq --version); awk: $(readlink -f "$(command -v awk)"); $(sort --version | head -1)"
    echo "# timer: ${GNU_TIME:-python3 resource.getrusage(RUSAGE_CHILDREN)}"
    ls -l application.log security.log | awk '{printf "# %s %d bytes\n", $NF, $5}'
} | tee "$OUT_DIR/results.tsv"
if [ "${WARM:-1}" != 0 ]; then
    cat application.log security.log >/dev/null
fi

printf '%-16s %8s %8s %12s %12s %10s %4s\n' pipeline wall_s cpu_s max_rss_MiB sum_rss_MiB out_lines rc
printf 'pipeline\twall_s\tcpu_s\tmax_rss_MiB\tsum_rss_MiB\tout_lines\trc\n' >>"$OUT_DIR/results.tsv"
for i in "${!PIPES[@]}"; do
    name=${NAMES[$i]}
    pipe=${PIPES[$i]}
    out="$OUT_DIR/$name.out"
    err="$OUT_DIR/$name.err"
    tf="$OUT_DIR/$name.time"
    if [ -n "$GNU_TIME" ]; then
        "$GNU_TIME" -f '%e %U %S %M %x' -o "$tf" bash -c "$pipe" >"$out" 2>"$err" &
    else
        python3 -c "$PYTIMER" "$tf" "$pipe" >"$out" 2>"$err" &
    fi
    tpid=$!
    sum_rss=$(python3 -c "$SAMPLER" "$tpid")
    wait "$tpid"
    read -r wall user sys maxrss_kib rc < <(tail -n 1 "$tf")
    cpu=$(awk -v u="$user" -v s="$sys" 'BEGIN {printf "%.2f", u + s}')
    maxrss=$(awk -v k="$maxrss_kib" 'BEGIN {printf "%.1f", k / 1024}')
    lines=$(wc -l <"$out")
    printf '%-16s %8s %8s %12s %12s %10s %4s\n' "$name" "$wall" "$cpu" "$maxrss" "$sum_rss" "$lines" "$rc"
    head -n 3 "$out" | cut -c1-200 | sed 's/^/    | /'
    if [ -s "$err" ]; then
        head -n 3 "$err" | sed 's/^/    ! /'
    fi
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$wall" "$cpu" "$maxrss" "$sum_rss" "$lines" "$rc" >>"$OUT_DIR/results.tsv"
done
echo "full outputs: $OUT_DIR"
