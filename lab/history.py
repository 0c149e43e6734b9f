#!/usr/bin/env python3
"""history.py --end UNIX_SECONDS --out FILE.om --facts FILE.json

Seven days of generated, deterministic history for the runbook lab's Prometheus, written as
OpenMetrics text for `promtool tsdb create-blocks-from openmetrics` (timestamps in seconds,
`# EOF` last), plus a JSON file of the facts a test can expect (every shape with its absolute
start and end). No randomness: the same --end gives byte-identical output.

The series are exactly the ones a live scrape of the demo service (job cctelegram, port 8080;
src/bin/cctelegram_demo/metrics.rs) produces, with the labels Prometheus adds (job, instance,
and the static `host` of lab/templates/prometheus.yml), so history and live data are one series
each. Note the histogram has `path` and `le` only (no `method`), and `le` is written the way
the demo writes it ("1", "5", not "1.0"): Prometheus 2.42 keeps `le` verbatim, so "1.0" would be
another series.

Counters start at 0 at the first sample. The live demo process starts from 0 again, which
PromQL sees as a counter reset. Counters are the floor of an exact (float) running total, so
http_requests_total{status="200"} + {status="500"} equals the histogram's _count and
+Inf bucket at every sample.
"""

import argparse
import json
import math
import sys

# ---------------------------------------------------------------------------------------------
# Every parameter of the history. Times are seconds; the end comes from --end (rounded down to
# a minute) and everything else is relative to it.

DAYS = 7
STEP_S = 60  # one sample per minute per series
JOB = "cctelegram"
HOSTS = {  # host label -> instance, as in lab/templates/prometheus.yml (job cctelegram)
    "mcp-01": "10.200.0.11:8080",
    "mcp-02": "10.200.0.12:8080",
    "mcp-03": "10.200.0.13:8080",
}
METHOD, PATH = "GET", "/api"
OK_STATUS, ERROR_STATUS = "200", "500"

# Request volume, the same on every host: RPS_MEAN + RPS_AMPLITUDE * cos(2*pi*(t - peak)/period),
# t in UNIX seconds, peak at RPS_PEAK_UTC_S seconds after midnight UTC (5..15 req/s per host).
RPS_MEAN = 10.0
RPS_AMPLITUDE = 5.0
RPS_PERIOD_S = 86400
RPS_PEAK_UTC_S = 14 * 3600

# Errors: the baseline share of 5xx, and one incident on every host.
BASELINE_5XX_RATIO = 0.005
INCIDENT_BEFORE_END_S = 2 * 86400  # the incident starts this long before the end
INCIDENT_DURATION_S = 3600
INCIDENT_5XX_RATIO = 0.30
INCIDENT_CPU_CORES = 0.5  # CPU during the incident (process_cpu_seconds_total's rate)

# Latency: the histogram's upper bounds exactly as the demo writes them (BUCKETS in
# metrics.rs; +Inf implied), and the cumulative share of requests at or below each bound.
# Within a bucket requests are taken as spread evenly (what histogram_quantile assumes), which
# gives the _sum. Baseline p95 = 0.05 + 0.05 * (0.95 - 0.90) / 0.10 = 0.075 s; incident
# p95 = 1 + 1.5 * (0.95 - 0.85) / 0.15 = 2.0 s.
BUCKETS = ("0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5")
BASELINE_CUMULATIVE = (0.0, 0.10, 0.50, 0.90, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0)
INCIDENT_CUMULATIVE = (0.0, 0.0, 0.05, 0.15, 0.25, 0.40, 0.60, 0.85, 1.0, 1.0)

# Memory (process_memory_heap_used_bytes): linear growth from a per-host start, far above the
# live demo's few MiB, so a 7-day peak comes from history.
MIB = 1024 * 1024
MEM_START_BYTES = {"mcp-01": 200 * MIB, "mcp-02": 210 * MIB, "mcp-03": 220 * MIB}
MEM_SLOPE_BYTES_PER_DAY = 10 * MIB

# CPU: process_cpu_seconds_total grows at CPU_CORES (INCIDENT_CPU_CORES during the incident);
# process_cpu_usage_percent is 100 * the cores of the minute ending at the sample.
CPU_CORES = 0.2

# ---------------------------------------------------------------------------------------------


def quantile(q, cumulative):
    """histogram_quantile over cumulative shares (Prometheus' bucketQuantile, +Inf = 1)."""
    bounds = [float(b) for b in BUCKETS] + [math.inf]
    counts = list(cumulative) + [1.0]
    rank = q * counts[-1]
    b = next((i for i in range(len(counts) - 1) if counts[i] >= rank), len(counts) - 1)
    if b == len(counts) - 1:
        return bounds[-2]
    if b == 0 and bounds[0] <= 0:
        return bounds[0]
    start, count = 0.0, counts[b]
    if b > 0:
        start, count, rank = bounds[b - 1], counts[b] - counts[b - 1], rank - counts[b - 1]
    return start + (bounds[b] - start) * (rank / count)


def mean_latency(cumulative):
    """Mean request duration with requests spread evenly inside each bucket."""
    total, lower, below = 0.0, 0.0, 0.0
    for bound, share in zip((float(b) for b in BUCKETS), cumulative):
        total += (share - below) * (lower + bound) / 2
        lower, below = bound, share
    assert abs(below - 1.0) < 1e-12, "every request must fall at or below the last bound"
    return total


def requests_until(t):
    """Requests per host from the UNIX epoch to t (integral of the request rate)."""
    w = 2 * math.pi / RPS_PERIOD_S
    return RPS_MEAN * t + RPS_AMPLITUDE / w * math.sin(w * (t - RPS_PEAK_UTC_S))


def fmt(v):
    return repr(round(v, 3))


def r9(v):
    return round(v, 9)


def labels(host, **extra):
    pairs = {"job": JOB, "instance": HOSTS[host], "host": host, **extra}
    return "{" + ",".join(f'{k}="{v}"' for k, v in pairs.items()) + "}"


def generate(end_arg):
    end = end_arg // 60 * 60
    start = end - DAYS * 86400
    n = (end - start) // STEP_S
    ts = [start + k * STEP_S for k in range(n + 1)]
    inc_start = end - INCIDENT_BEFORE_END_S
    inc_end = inc_start + INCIDENT_DURATION_S
    assert start <= inc_start and inc_end <= end and inc_start % STEP_S == 0 and inc_end % STEP_S == 0

    base_mean, inc_mean = mean_latency(BASELINE_CUMULATIVE), mean_latency(INCIDENT_CUMULATIVE)
    # exact running totals (floats) per sample; interval k is (ts[k-1], ts[k]]
    total = err = lat_sum = cpu = 0.0
    buckets = [0.0] * len(BUCKETS)
    rows = []  # per sample: (requests int, errors int, [bucket ints], sum, cpu seconds, cpu %)
    prev_n = requests_until(start)
    for k, t in enumerate(ts):
        cores = CPU_CORES
        if k > 0:
            incident = inc_start <= ts[k - 1] and t <= inc_end
            d = requests_until(t) - prev_n
            prev_n += d
            ratio, cum, mean = (
                (INCIDENT_5XX_RATIO, INCIDENT_CUMULATIVE, inc_mean)
                if incident
                else (BASELINE_5XX_RATIO, BASELINE_CUMULATIVE, base_mean)
            )
            cores = INCIDENT_CPU_CORES if incident else CPU_CORES
            total += d
            err += d * ratio
            lat_sum += d * mean
            cpu += cores * STEP_S
            for i, share in enumerate(cum):
                buckets[i] += d * share
        n_int = math.floor(total)
        bucket_ints = [min(math.floor(b), n_int) for b in buckets]
        rows.append((n_int, math.floor(err), bucket_ints, lat_sum, cpu, cores * 100))
    for a, b in zip(rows, rows[1:]):  # counters never go down; buckets are cumulative
        assert b[0] >= a[0] and b[1] >= a[1] and b[0] - b[1] >= a[0] - a[1]
        assert b[3] >= a[3] and b[4] >= a[4]
        assert all(x <= y for x, y in zip(b[2], b[2][1:] + [b[0]]))
        assert all(x <= y for x, y in zip(a[2], b[2]))

    def families():
        yield "# HELP http_requests Total HTTP requests by method, path and status."
        yield "# TYPE http_requests counter"
        for h in HOSTS:
            for status in (OK_STATUS, ERROR_STATUS):
                p = "http_requests_total" + labels(h, method=METHOD, path=PATH, status=status) + " "
                for t, r in zip(ts, rows):
                    yield f"{p}{r[0] - r[1] if status == OK_STATUS else r[1]} {t}"
        yield "# HELP http_request_duration_seconds HTTP request duration in seconds."
        yield "# TYPE http_request_duration_seconds histogram"
        for h in HOSTS:
            pb = [f"http_request_duration_seconds_bucket{labels(h, path=PATH, le=le)} " for le in BUCKETS]
            pinf = f"http_request_duration_seconds_bucket{labels(h, path=PATH, le='+Inf')} "
            ps = f"http_request_duration_seconds_sum{labels(h, path=PATH)} "
            pc = f"http_request_duration_seconds_count{labels(h, path=PATH)} "
            for t, r in zip(ts, rows):  # one histogram point: its buckets, sum and count together
                for prefix, v in zip(pb, r[2]):
                    yield f"{prefix}{v} {t}"
                yield f"{pinf}{r[0]} {t}"
                yield f"{ps}{fmt(r[3])} {t}"
                yield f"{pc}{r[0]} {t}"
        yield "# HELP process_cpu_seconds Total user and system CPU time spent in seconds."
        yield "# TYPE process_cpu_seconds counter"
        for h in HOSTS:
            p = "process_cpu_seconds_total" + labels(h) + " "
            for t, r in zip(ts, rows):
                yield f"{p}{fmt(r[4])} {t}"
        yield "# HELP process_cpu_usage_percent CPU used by this process, in percent of one core."
        yield "# TYPE process_cpu_usage_percent gauge"
        for h in HOSTS:
            p = "process_cpu_usage_percent" + labels(h) + " "
            for t, r in zip(ts, rows):
                yield f"{p}{fmt(r[5])} {t}"
        yield "# HELP process_memory_heap_used_bytes Memory in use by this process (resident set size)."
        yield "# TYPE process_memory_heap_used_bytes gauge"
        slope_s = MEM_SLOPE_BYTES_PER_DAY / 86400
        for h in HOSTS:
            p = "process_memory_heap_used_bytes" + labels(h) + " "
            for t in ts:
                yield f"{p}{round(MEM_START_BYTES[h] + slope_s * (t - start))} {t}"
        yield "# EOF"

    total_cpu = rows[-1][4]
    phase = lambda cum, mean: {  # noqa: E731
        "cumulative_shares": dict(zip(BUCKETS + ("+Inf",), cum + (1.0,))),
        "p50_seconds": r9(quantile(0.5, cum)),
        "p90_seconds": r9(quantile(0.9, cum)),
        "p95_seconds": r9(quantile(0.95, cum)),
        "p99_seconds": r9(quantile(0.99, cum)),
        "mean_seconds": r9(mean),
    }
    facts = {
        "format": 1,
        "generator": "lab/history.py",
        "start": start,
        "end": end,
        "step_seconds": STEP_S,
        "samples_per_series": n + 1,
        "job": JOB,
        "hosts": [{"host": h, "instance": i} for h, i in HOSTS.items()],
        "notes": [
            "a [W] range ending at t sees one shape only when [t-W, t] lies inside that shape's"
            " [start, end]; with 60 s samples W must be >= 2m for rate()",
            "counters start at 0 at start; the live demo starts from 0 again (a counter reset)",
            "live samples come every 1 s: a 7d deriv()/avg_over_time() whose window reaches past"
            " end is dominated by them; evaluate at end (time=end) for the history alone",
        ],
        "requests": {
            "start": start,
            "end": end,
            "metric": "http_requests_total",
            "labels": {"method": METHOD, "path": PATH},
            "ok_status": OK_STATUS,
            "error_status": ERROR_STATUS,
            "per_host": True,
            "rps_formula": "rps_mean + rps_amplitude * cos(2*pi*(t - peak_utc_seconds) / period_seconds)"
            ", t in UNIX seconds",
            "rps_mean": RPS_MEAN,
            "rps_amplitude": RPS_AMPLITUDE,
            "rps_min": RPS_MEAN - RPS_AMPLITUDE,
            "rps_max": RPS_MEAN + RPS_AMPLITUDE,
            "period_seconds": RPS_PERIOD_S,
            "peak_utc_seconds": RPS_PEAK_UTC_S,
            "requests_per_host": rows[-1][0],
            "errors_per_host": rows[-1][1],
        },
        "errors_baseline": {
            "start": start,
            "end": end,
            "except": [[inc_start, inc_end]],
            "ratio_5xx": BASELINE_5XX_RATIO,
        },
        "incident": {
            "start": inc_start,
            "end": inc_end,
            "duration_seconds": INCIDENT_DURATION_S,
            "hosts": list(HOSTS),
            "ratio_5xx": INCIDENT_5XX_RATIO,
            "p95_seconds": r9(quantile(0.95, INCIDENT_CUMULATIVE)),
            "cpu_cores": INCIDENT_CPU_CORES,
        },
        "latency_baseline": {"start": start, "end": end, "except": [[inc_start, inc_end]],
                             "metric": "http_request_duration_seconds", "labels": {"path": PATH},
                             **phase(BASELINE_CUMULATIVE, base_mean)},
        "latency_incident": {"start": inc_start, "end": inc_end,
                             "metric": "http_request_duration_seconds", "labels": {"path": PATH},
                             **phase(INCIDENT_CUMULATIVE, inc_mean)},
        "memory": {
            "start": start,
            "end": end,
            "metric": "process_memory_heap_used_bytes",
            "slope_bytes_per_day": MEM_SLOPE_BYTES_PER_DAY,
            "slope_bytes_per_second": r9(MEM_SLOPE_BYTES_PER_DAY / 86400),
            "start_bytes": MEM_START_BYTES,
            "end_bytes": {h: round(b + MEM_SLOPE_BYTES_PER_DAY * DAYS) for h, b in MEM_START_BYTES.items()},
            "mean_bytes": {h: b + MEM_SLOPE_BYTES_PER_DAY * DAYS / 2 for h, b in MEM_START_BYTES.items()},
            "peak_at": end,
        },
        "cpu": {
            "start": start,
            "end": end,
            "metric": "process_cpu_seconds_total",
            "gauge": "process_cpu_usage_percent",
            "cores": CPU_CORES,
            "incident_cores": INCIDENT_CPU_CORES,
            "mean_cores": r9(total_cpu / (end - start)),
            "cpu_seconds_per_host": total_cpu,
        },
    }
    return families(), facts


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[1])
    ap.add_argument("--end", type=int, required=True, help="UNIX seconds; rounded down to a minute")
    ap.add_argument("--out", required=True, help="OpenMetrics output file")
    ap.add_argument("--facts", required=True, help="JSON facts output file")
    a = ap.parse_args()
    lines, facts = generate(a.end)
    with open(a.out, "w", encoding="ascii", newline="\n") as f:
        buf = []
        for line in lines:
            buf.append(line)
            if len(buf) >= 65536:
                f.write("\n".join(buf) + "\n")
                buf.clear()
        f.write("\n".join(buf) + "\n")
    with open(a.facts, "w", encoding="ascii") as f:
        json.dump(facts, f, indent=2)
        f.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
