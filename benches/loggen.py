#!/usr/bin/env python3
"""Deterministic application.log / security.log generator for the log-analysis benchmark.

    loggen.py DIR [--app-bytes N] [--sec-bytes N]

Writes DIR/application.log (default 1 GiB), DIR/security.log (default 256 MiB) and
DIR/expected.json (the answers, counted while generating). Each file stops at the first line
that brings it to N bytes or more. The same arguments always give byte-identical files:
every random choice comes from random.Random(42) and time is simulated, never read.

Lines match src/bin/cctelegram_demo/logging.rs byte for byte in shape: the same key order,
`duration` in ms with three decimals, timestamps `YYYY-MM-DDTHH:MM:SS.mmmZ`, request ids
`req-<4 hex>-<6+ digits>`, security messages `SECURITY <EVENT><detail>`. The demo never
writes CRITICAL or FATAL; the few here are invented service lines in the same format.

Shapes (application.log):
  - the clock starts at 2026-11-30T00:00:00.000Z and advances 1-35 ms per line (mean 18),
    so 1 GiB spans about 23 hours; timestamps strictly increase;
  - about 93% 2xx, 5% 4xx (WARN: 429, 401, 405), 2% 5xx (ERROR: 500, 503) from 5 distinct
    error messages; 5xx runs at 1.6% except in an "incident" from 62% to 64% of the file,
    where it is about 18%;
  - service lines (logger "service") at fixed fractions of the file, so a 1 MiB sample has
    them too: starts/stops (a deploy at 30%, restarts after each FATAL), 3 ERROR,
    5 CRITICAL, 2 FATAL, plus "reloaded" when the clock passes 06:25 (logrotate);
  - client IPs: 400 addresses (some IPv6) with a Zipf-like weight;
  - durations: 2xx mostly 1-20 ms with a tail to 2000 ms; 4xx/5xx are fast (< 1 ms), as
    the demo answers those without doing work.
Shapes (security.log): bursts of RATE_LIMIT_EXCEEDED from Zipf-weighted IPs (several lines
can share one millisecond), and AUTHENTICATION_FAILED mostly from five scanner IPs.
"""

import argparse
import datetime
import json
import math
import os
import random
import sys
import time

START = datetime.datetime(2026, 11, 30, tzinfo=datetime.timezone.utc)
START_EPOCH = int(START.timestamp())
HOST = "mcp-1"
SERVICE = "cctelegram-mcp"
LISTEN = "127.0.0.1:8080"
VERSION = "1.4.2"
RATE_LIMIT_PER_SEC = 50
FLUSH_LINES = 32768

# (method, path, status, weight in normal mode); weights are per ~10 000 access lines.
ACCESS_KINDS = [
    ("GET", "/api/status", 200, 2640),
    ("POST", "/api/send", 200, 2400),
    ("GET", "/api/messages", 200, 1500),
    ("POST", "/api/notify", 200, 1000),
    ("GET", "/health", 200, 1200),
    ("GET", "/api/tasks", 200, 500),
    ("POST", "/api/tasks", 200, 100),
    ("POST", "/api/send", 429, 220),
    ("GET", "/api/status", 429, 100),
    ("POST", "/api/notify", 429, 60),
    ("GET", "/health", 401, 100),
    ("POST", "/health", 405, 20),
    ("POST", "/api/send", 500, 60),
    ("GET", "/api/status", 500, 30),
    ("POST", "/api/notify", 500, 25),
    ("GET", "/api/messages", 500, 15),
    ("GET", "/health", 503, 30),
]
INCIDENT_5XX_FACTOR = 14
INCIDENT = (0.62, 0.64)

# Service lines at fractions of --app-bytes: (fraction, level, message, context builder).
# "started"/"stopping" use the demo's identity context; a FATAL is followed by a restart.
SERVICE_EVENTS = [
    (0.08, "ERROR", "telegram send failed", '{"error":"connection reset by peer","retry_in_ms":500}'),
    (0.17, "CRITICAL", "telegram bridge unreachable", '{"queue_depth":1843,"last_success_seconds_ago":312}'),
    (0.18, "ERROR", "telegram send failed", '{"error":"operation timed out","retry_in_ms":1000}'),
    (0.30, "DEPLOY", None, None),
    (0.41, "CRITICAL", "disk usage above threshold", '{"path":"/var/log/cctelegram","used_percent":96}'),
    (0.55, "CRITICAL", "memory usage above threshold", '{"rss_mib":1890,"limit_mib":2048}'),
    (0.56, "FATAL", "out of memory, aborting", '{"rss_mib":2049,"limit_mib":2048}'),
    (0.625, "CRITICAL", "error rate above threshold", '{"error_rate":0.22,"window_seconds":300}'),
    (0.71, "ERROR", "telegram send failed", '{"error":"connection refused","retry_in_ms":2000}'),
    (0.88, "FATAL", "panic in request handler", '{"location":"src/routes.rs:88","signal":"SIGABRT"}'),
    (0.93, "CRITICAL", "telegram bridge unreachable", '{"queue_depth":5120,"last_success_seconds_ago":907}'),
]
LOGROTATE_SECOND_OF_DAY = 6 * 3600 + 25 * 60


def ms_suffixes():
    return [".%03dZ" % ms for ms in range(1000)]


def second_prefix(sec):
    """'{"timestamp":"2026-11-30T00:00:07' for `sec` seconds after START."""
    t = datetime.datetime.fromtimestamp(START_EPOCH + sec, datetime.timezone.utc)
    return '{"timestamp":"' + t.strftime("%Y-%m-%dT%H:%M:%S")


def hour_key(sec):
    t = datetime.datetime.fromtimestamp(START_EPOCH + sec, datetime.timezone.utc)
    return t.strftime("%Y-%m-%dT%H")


def ts_string(sec, ms):
    return second_prefix(sec)[len('{"timestamp":"'):] + ".%03dZ" % ms


def weighted_table(items, weights, size):
    """A list of about `size` entries where each item appears in proportion to its weight
    (at least once), so a uniform index draws a weighted item."""
    total = float(sum(weights))
    table = []
    for item, w in zip(items, weights):
        table.extend([item] * max(1, round(w / total * size)))
    return table


def fmt_ms(us):
    """Rust's `{:.3}` of a millisecond value that is a whole number of microseconds."""
    return "%d.%03d" % divmod(us, 1000)


def ip_pool(rng):
    ips = set()
    while len(ips) < 200:
        ips.add("10.200.%d.%d" % (rng.randrange(4), rng.randrange(1, 255)))
    for net in ("203.0.113", "198.51.100", "192.0.2"):
        hosts = rng.sample(range(1, 255), 60)
        ips.update("%s.%d" % (net, h) for h in hosts)
    v6 = rng.sample(range(1, 0xFFFF), 20)
    ips.update("2001:db8::%x" % h for h in v6)  # RFC 5952 form, as Rust prints it
    pool = sorted(ips)
    assert len(pool) == 400
    rng.shuffle(pool)
    return pool


def zipf_weights(n, s):
    return [1.0 / (k ** s) for k in range(1, n + 1)]


def duration_tables(rng):
    """(normal, fast): lists of microsecond durations to draw from uniformly.

    normal (2xx): 88% log-normal around 5 ms clamped to 1-20 ms, 9% 20-100 ms, 3% a Pareto
    tail from 100 ms capped at 2000 ms (about 50 of the 65 536 entries sit at
    the cap, like requests cut off by a 2 s timeout). fast (4xx/5xx): 20-999 us, mostly under 300 us.
    """
    normal = []
    for _ in range(1 << 16):
        u = rng.random()
        if u < 0.88:
            v = rng.lognormvariate(math.log(5.0), 0.6)
            ms = min(20.0, max(1.0, v))
        elif u < 0.97:
            ms = rng.uniform(20.0, 100.0)
        else:
            ms = min(2000.0, 100.0 * rng.paretovariate(1.2))
        normal.append(int(round(ms * 1000)))
    fast = []
    for _ in range(1 << 12):
        if rng.random() < 0.9:
            fast.append(rng.randint(20, 300))
        else:
            fast.append(rng.randint(300, 999))
    return normal, fast


class Writer:
    def __init__(self, path):
        self.f = open(path, "wb")
        self.buf = []

    def flush(self):
        if self.buf:
            self.f.write("".join(self.buf).encode("ascii"))
            self.buf = []

    def close(self):
        self.flush()
        self.f.close()


def identity(pid):
    return '{"service":"%s","host":"%s","listen":"%s","version":"%s","pid":%d}' % (
        SERVICE, HOST, LISTEN, VERSION, pid)


def service_line(prefix, msz, level, message, context):
    return '%s%s","level":"%s","logger":"service","message":"%s","context":%s}\n' % (
        prefix, msz, level, message, context)


def gen_app(path, target, rng, pool):
    pool_w = zipf_weights(len(pool), 1.0)
    perm = pool[:]
    rng.shuffle(perm)  # the app log's heavy clients differ from the rate-limit offenders
    # Per IP: the text between the duration and the request id counter.
    ip_parts = weighted_table(
        [',"client_ip":"%s","request_id":"req-' % ip for ip in perm], pool_w, 1 << 16)
    ipl = len(ip_parts)
    normal_us, fast_us = duration_tables(rng)
    normal_s = [fmt_ms(u) for u in normal_us]
    fast_s = [fmt_ms(u) for u in fast_us]

    kinds = []
    for i, (m, p, st, w) in enumerate(ACCESS_KINDS):
        level = "ERROR" if st >= 500 else "WARN" if st >= 400 else "INFO"
        text = ('","level":"%s","logger":"http","message":"%s %s %d","context":{"method":"%s",'
                '"path":"%s","status":%d,"duration":') % (level, m, p, st, m, p, st)
        kinds.append((i, text, st >= 400, st >= 500))
    w_normal = [k[3] for k in ACCESS_KINDS]
    w_incident = [w * INCIDENT_5XX_FACTOR if st >= 500 else w for (_, _, st, w) in ACCESS_KINDS]
    table_normal = weighted_table(kinds, w_normal, 1 << 16)
    table_incident = weighted_table(kinds, w_incident, 1 << 16)

    gaps = list(range(1, 36))
    msz = ms_suffixes()
    rnd = rng.random
    grb = rng.getrandbits

    kind_count = [0] * len(kinds)
    normal_count = [0] * len(normal_us)
    fast_count = [0] * len(fast_us)
    err_by_hour = {}
    svc = {"INFO": 0, "ERROR": 0, "CRITICAL": 0, "FATAL": 0}
    svc_lines = []

    # The schedule: (byte offset, action); the incident window is two of its entries.
    schedule = [(int(f * target), (lvl, msg, ctx)) for (f, lvl, msg, ctx) in SERVICE_EVENTS]
    schedule += [(int(INCIDENT[0] * target), ("INCIDENT_ON", None, None)),
                 (int(INCIDENT[1] * target), ("INCIDENT_OFF", None, None))]
    schedule.sort(key=lambda e: e[0])
    schedule.append((1 << 62, None))
    next_at, _ = schedule[0]
    si = 0

    out = Writer(path)
    buf = out.buf
    written = 0
    lines = 0
    sec, ms = 0, 0
    prefix = second_prefix(0)
    hour = 0
    first_ts = None
    pid = 4100 + rng.randrange(1000)
    rp = "%04x-" % grb(16)
    n = 0
    table, tl = table_normal, len(table_normal)
    pending = [("INFO", "service started", identity(pid))]
    reloaded_day = -1

    while written < target:
        if pending or written >= next_at:
            while written >= next_at:
                action = schedule[si][1]
                si += 1
                next_at = schedule[si][0]
                lvl = action[0]
                if lvl == "INCIDENT_ON":
                    table, tl = table_incident, len(table_incident)
                elif lvl == "INCIDENT_OFF":
                    table, tl = table_normal, len(table_normal)
                elif lvl == "DEPLOY":
                    pending.append(("INFO", "service stopping", identity(pid)))
                    pending.append(("RESTART", None, None))
                elif lvl == "FATAL":
                    pending.append((lvl, action[1], action[2][:-1] + ',"pid":%d}' % pid))
                    pending.append(("RESTART", None, None))
                else:
                    pending.append(action)
            if pending:
                lvl, msg, ctx = pending.pop(0)
                if lvl == "RESTART":
                    pid += 1 + rng.randrange(500)
                    rp = "%04x-" % grb(16)
                    n = 0
                    lvl, msg, ctx = "INFO", "service started", identity(pid)
                ms += 1 + rng.randrange(5)
                while ms >= 1000:
                    ms -= 1000
                    sec += 1
                    prefix = second_prefix(sec)
                    hour = sec // 3600
                line = service_line(prefix, msz[ms], lvl, msg, ctx)
                if first_ts is None:
                    first_ts = ts_string(sec, ms)
                svc[lvl] += 1
                svc_lines.append({"timestamp": ts_string(sec, ms), "level": lvl, "message": msg})
                if lvl != "INFO":
                    hk = hour
                    err_by_hour[hk] = err_by_hour.get(hk, 0) + 1
                buf.append(line)
                written += len(line)
                lines += 1
                continue

        ms += gaps[int(rnd() * 35)]
        if ms >= 1000:
            ms -= 1000
            sec += 1
            prefix = second_prefix(sec)
            hour = sec // 3600
            if sec % 86400 == LOGROTATE_SECOND_OF_DAY and sec // 86400 != reloaded_day:
                reloaded_day = sec // 86400
                pending.append(("INFO", "reloaded", '{"pid":%d}' % pid))
        ki, text, fast, err = table[int(rnd() * tl)]
        kind_count[ki] += 1
        if fast:
            di = grb(12)
            fast_count[di] += 1
            d = fast_s[di]
            if err:
                err_by_hour[hour] = err_by_hour.get(hour, 0) + 1
        else:
            di = grb(16)
            normal_count[di] += 1
            d = normal_s[di]
        n += 1
        line = "%s%s%s%s%s%s%06d\"}}\n" % (prefix, msz[ms], text, d, ip_parts[int(rnd() * ipl)], rp, n)
        buf.append(line)
        written += len(line)
        lines += 1
        if len(buf) >= FLUSH_LINES:
            out.flush()
            buf = out.buf
    out.close()
    last_ts = ts_string(sec, ms)

    # Answers.
    by_level = {"INFO": svc["INFO"], "WARN": 0, "ERROR": svc["ERROR"],
                "CRITICAL": svc["CRITICAL"], "FATAL": svc["FATAL"]}
    status_counts = {}
    errors_by_message = {}
    access_lines = 0
    for (i, (m, p, st, _)) in enumerate(ACCESS_KINDS):
        c = kind_count[i]
        access_lines += c
        level = "ERROR" if st >= 500 else "WARN" if st >= 400 else "INFO"
        by_level[level] += c
        status_counts[str(st)] = status_counts.get(str(st), 0) + c
        if st >= 500 and c:
            errors_by_message["%s %s %d" % (m, p, st)] = c
    for s in svc_lines:
        if s["level"] in ("ERROR", "CRITICAL", "FATAL"):
            errors_by_message[s["message"]] = errors_by_message.get(s["message"], 0) + 1

    pairs = [(normal_us[i], c) for i, c in enumerate(normal_count) if c]
    pairs += [(fast_us[i], c) for i, c in enumerate(fast_count) if c]
    pairs.sort()
    dcount = sum(c for _, c in pairs)
    dsum_us = sum(u * c for u, c in pairs)

    def pct(p):
        rank = max(1, math.ceil(p / 100.0 * dcount))
        acc = 0
        for u, c in pairs:
            acc += c
            if acc >= rank:
                return u / 1000.0
        return None

    mean = dsum_us / dcount / 1000.0 if dcount else None
    grep_error_lines = by_level["ERROR"] + by_level["CRITICAL"] + by_level["FATAL"]
    return {
        "file": "application.log",
        "bytes": written,
        "lines": lines,
        "access_lines": access_lines,
        "service_lines": len(svc_lines),
        "first_timestamp": first_ts,
        "last_timestamp": last_ts,
        "lines_by_level": by_level,
        "status_counts": dict(sorted(status_counts.items())),
        "errors_by_message": dict(sorted(errors_by_message.items(), key=lambda kv: (-kv[1], kv[0]))),
        "error_lines_by_hour": {hour_key(h * 3600): c for h, c in sorted(err_by_hour.items())},
        "service_events": svc_lines,
        "duration_ms": {
            "count": dcount,
            "sum_us": dsum_us,
            "mean": mean,
            "min": pairs[0][0] / 1000.0 if pairs else None,
            "max": pairs[-1][0] / 1000.0 if pairs else None,
            "p50": pct(50), "p90": pct(90), "p99": pct(99), "p999": pct(99.9),
            "percentile_method": "nearest-rank: smallest value with at least ceil(p/100*count) values <= it",
        },
        "pipelines": {
            "error_pattern": {
                "grep_matching_lines": grep_error_lines,
                "output_lines": grep_error_lines,
                "note": "every matching line has a distinct timestamp, so uniq -c counts are all 1",
            },
            "performance": {
                "grep_matching_lines": access_lines,
                "output": "Avg: %.6g ms" % mean if dcount else None,
            },
        },
    }


def gen_security(path, target, rng, pool):
    rl_perm = pool[:]
    rng.shuffle(rl_perm)
    rl_ips = weighted_table(rl_perm, zipf_weights(len(pool), 1.1), 1 << 16)
    rl_len = weighted_table(
        [1, 2, 3, 4, 5, 6, 8, 10, 15, 20, 30, 50, 80, 120, 200, 300],
        [30, 15, 10, 8, 6, 5, 5, 4, 4, 3, 3, 2, 2, 1, 1, 0.5], 4096)
    # Per burst, the largest gap between lines (ms); each gap is uniform in 0..max, so a
    # fast flood puts a few lines in one millisecond.
    intra_gap = [1, 2, 3, 5, 8, 13, 21, 34]
    rl_paths = weighted_table(["/api/send", "/api/status", "/api/notify"], [5, 3, 2], 100)
    scanners = ["198.51.100.%d" % h for h in rng.sample(range(1, 255), 5)]
    scanner_tab = weighted_table(scanners, [40, 25, 15, 12, 8], 100)
    msz = ms_suffixes()
    rnd = rng.random
    grb = rng.getrandbits

    rl_text = ('","level":"WARN","type":"SECURITY","message":"SECURITY RATE_LIMIT_EXCEEDED",'
               '"event":"RATE_LIMIT_EXCEEDED","context":{"client_ip":"')
    rl_tail = {p: '","path":"%s","limit_per_second":%d}}\n' % (p, RATE_LIMIT_PER_SEC)
               for p in ("/api/send", "/api/status", "/api/notify")}
    auth_text = {
        r: ('","level":"WARN","type":"SECURITY","message":"SECURITY AUTHENTICATION_FAILED %s API key",'
            '"event":"AUTHENTICATION_FAILED","context":{"client_ip":"') % r
        for r in ("missing", "invalid")
    }
    auth_tail = {r: '","path":"/health","reason":"%s","request_id":"req-' % r
                 for r in ("missing", "invalid")}

    out = Writer(path)
    buf = out.buf
    written = 0
    lines = 0
    sec, ms = 0, 0
    prefix = second_prefix(0)
    first_ts = None
    rp = "%04x-" % grb(16)
    n = 0
    events = {"RATE_LIMIT_EXCEEDED": 0, "AUTHENTICATION_FAILED": 0}
    reasons = {"missing": 0, "invalid": 0}
    rl_by_ip = {}
    auth_by_ip = {}
    # (timestamp, message, client_ip) multiplicities, as pipeline 2 counts them. Timestamps
    # never decrease, so equal triples only occur within one millisecond.
    triple_hist = {}
    cur = {}
    cur_key = (0, 0)

    while written < target:
        ms += 1 + int(rnd() * 1200)
        while ms >= 1000:
            ms -= 1000
            sec += 1
        prefix = second_prefix(sec)
        if rnd() < 0.85:
            ip = rl_ips[int(rnd() * len(rl_ips))]
            k = rl_len[grb(12) % len(rl_len)]
            tail = rl_tail[rl_paths[int(rnd() * 100)]]
            g = intra_gap[int(rnd() * len(intra_gap))] + 1
            for j in range(k):
                if j:
                    ms += int(rnd() * g)
                    if ms >= 1000:
                        while ms >= 1000:
                            ms -= 1000
                            sec += 1
                        prefix = second_prefix(sec)
                line = "%s%s%s%s%s" % (prefix, msz[ms], rl_text, ip, tail)
                if first_ts is None:
                    first_ts = ts_string(sec, ms)
                buf.append(line)
                written += len(line)
                lines += 1
                events["RATE_LIMIT_EXCEEDED"] += 1
                rl_by_ip[ip] = rl_by_ip.get(ip, 0) + 1
                key = (sec, ms)
                if key != cur_key:
                    for c in cur.values():
                        triple_hist[c] = triple_hist.get(c, 0) + 1
                    cur = {}
                    cur_key = key
                t = ("RL", ip)
                cur[t] = cur.get(t, 0) + 1
                if written >= target:
                    break
        else:
            ip = scanner_tab[int(rnd() * 100)] if rnd() < 0.7 else rl_perm[int(rnd() * len(rl_perm))]
            reason = "invalid" if rnd() < 0.6 else "missing"
            for j in range(1 + int(rnd() * 3)):
                if j:
                    ms += 200 + int(rnd() * 300)
                    while ms >= 1000:
                        ms -= 1000
                        sec += 1
                    prefix = second_prefix(sec)
                n += 1
                line = '%s%s%s%s%s%s%06d"}}\n' % (prefix, msz[ms], auth_text[reason], ip,
                                                  auth_tail[reason], rp, n)
                if first_ts is None:
                    first_ts = ts_string(sec, ms)
                buf.append(line)
                written += len(line)
                lines += 1
                events["AUTHENTICATION_FAILED"] += 1
                reasons[reason] += 1
                auth_by_ip[ip] = auth_by_ip.get(ip, 0) + 1
                key = (sec, ms)
                if key != cur_key:
                    for c in cur.values():
                        triple_hist[c] = triple_hist.get(c, 0) + 1
                    cur = {}
                    cur_key = key
                t = (reason, ip)
                cur[t] = cur.get(t, 0) + 1
                if written >= target:
                    break
        if len(buf) >= FLUSH_LINES:
            out.flush()
            buf = out.buf
    out.close()
    for c in cur.values():
        triple_hist[c] = triple_hist.get(c, 0) + 1

    # Pipeline 4's order: `sort -nr` on uniq -c's "%7d ip" lines; equal counts fall back to
    # comparing whole lines, also reversed (byte order under LC_ALL=C / C.UTF-8).
    ranked = sorted(rl_by_ip.items(), key=lambda kv: (kv[1], kv[0].encode()), reverse=True)
    top10 = ranked[:10]
    counts_top11 = [c for _, c in ranked[:11]]
    ties = len(set(counts_top11)) < len(counts_top11)
    return {
        "file": "security.log",
        "bytes": written,
        "lines": lines,
        "first_timestamp": first_ts,
        "last_timestamp": ts_string(sec, ms),
        "events": events,
        "auth_failed_reasons": reasons,
        "rate_limit_distinct_ips": len(rl_by_ip),
        "rate_limit_top10": [{"client_ip": ip, "count": c} for ip, c in top10],
        "rate_limit_top10_has_ties": ties,
        "rate_limit_by_ip": dict(sorted(rl_by_ip.items(), key=lambda kv: (-kv[1], kv[0]))),
        "auth_failed_by_ip": dict(sorted(auth_by_ip.items(), key=lambda kv: (-kv[1], kv[0]))),
        "pipelines": {
            "security_events": {
                "grep_matching_lines": lines,
                "output_lines": sum(triple_hist.values()),
                "max_count": max(triple_hist) if triple_hist else 0,
                "triples_by_count": {str(k): v for k, v in sorted(triple_hist.items())},
                "note": "uniq -c over (timestamp, message, client_ip): only lines in the same "
                        "millisecond from the same IP with the same message merge",
            },
            "rate_limit": {
                "grep_matching_lines": events["RATE_LIMIT_EXCEEDED"],
                "output": ["%7d %s" % (c, ip) for ip, c in top10],
            },
        },
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("dir")
    ap.add_argument("--app-bytes", type=int, default=1 << 30)
    ap.add_argument("--sec-bytes", type=int, default=256 << 20)
    args = ap.parse_args()
    os.makedirs(args.dir, exist_ok=True)

    rng = random.Random(42)
    pool = ip_pool(rng)
    # Separate streams, so changing one size leaves the other file unchanged.
    app_rng = random.Random(rng.getrandbits(64))
    sec_rng = random.Random(rng.getrandbits(64))

    t0 = time.monotonic()
    app = gen_app(os.path.join(args.dir, "application.log"), args.app_bytes, app_rng, pool)
    t1 = time.monotonic()
    sec = gen_security(os.path.join(args.dir, "security.log"), args.sec_bytes, sec_rng, pool)
    t2 = time.monotonic()

    expected = {
        "generator": {
            "args": {"app_bytes": args.app_bytes, "sec_bytes": args.sec_bytes},
            "seed": 42,
        },
        "application": app,
        "security": sec,
    }
    with open(os.path.join(args.dir, "expected.json"), "w") as f:
        json.dump(expected, f, indent=1)
        f.write("\n")
    print("application.log: %d bytes, %d lines in %.1f s" % (app["bytes"], app["lines"], t1 - t0),
          file=sys.stderr)
    print("security.log:    %d bytes, %d lines in %.1f s" % (sec["bytes"], sec["lines"], t2 - t1),
          file=sys.stderr)
    summary = {
        "app_lines": app["lines"],
        "lines_by_level": app["lines_by_level"],
        "duration_ms": {k: app["duration_ms"][k] for k in ("count", "mean", "max")},
        "security_lines": sec["lines"],
        "security_events": sec["events"],
        "rate_limit_top10": [[d["client_ip"], d["count"]] for d in sec["rate_limit_top10"]],
    }
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
