//! The runbook's four log pipelines vs `analyze_logs`, on the same generated logs, in one run.
//!
//! ```sh
//! python3 benches/loggen.py /tmp/logbench          # 1 GiB application log, 256 MiB security log
//! cargo bench --bench logs -- /tmp/logbench        # local passes; add --ssh for the lab leg
//! ```
//!
//! Each measurement runs in a child process (this binary again) so its peak RSS is its own:
//! the runbook's pipelines under `bash -c`, the scan reading the file in 1 MiB chunks, and
//! (`--ssh`, needs `sudo lab/lab.sh start`) `analyze_logs` on mcp-03 over ssh, end to end.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use runbook_mcp::analyze::logscan::{Analyses, Options, Scan};

const NONE: Analyses = Analyses {
    errors: false,
    security: false,
    durations: false,
    rate_limits: false,
};

/// (name, the runbook's pipeline, the log it reads, the analysis that answers it)
const PIPELINES: [(&str, &str, &str, Analyses); 4] = [
    (
        "error patterns",
        r#"grep -E "(ERROR|CRITICAL|FATAL)" application.log | awk '{print $1, $2}' | sort | uniq -c | sort -nr > /dev/null"#,
        "application.log",
        Analyses {
            errors: true,
            ..NONE
        },
    ),
    (
        "security events",
        r#"grep "SECURITY" security.log | jq -r '.timestamp, .message, .context.client_ip' | paste - - - | sort | uniq -c | sort -nr > /dev/null"#,
        "security.log",
        Analyses {
            security: true,
            ..NONE
        },
    ),
    (
        "request duration",
        r#"grep "duration" application.log | jq -r '.context.duration' | awk '{sum+=$1; count++} END {print "Avg:", sum/count, "ms"}' > /dev/null"#,
        "application.log",
        Analyses {
            durations: true,
            ..NONE
        },
    ),
    (
        "rate-limit offenders",
        r#"grep "RATE_LIMIT_EXCEEDED" security.log | jq -r '.context.client_ip' | sort | uniq -c | sort -nr | head -10 > /dev/null"#,
        "security.log",
        Analyses {
            rate_limits: true,
            ..NONE
        },
    ),
];

fn options(a: Analyses) -> Options {
    Options {
        analyses: a,
        since: None,
        until: None,
        bucket_chars: 16,
        top: 10,
    }
}

/// Peak resident memory of this process so far, MiB (`VmHWM`).
fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kb: f64 = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    kb / 1024.0
}

/// Child: one scan of `file`, printing `seconds rss_mib`.
fn child_scan(which: usize, file: &Path) {
    let started = Instant::now();
    let mut scan = Scan::new(options(PIPELINES[which].3));
    let mut f = std::fs::File::open(file).unwrap();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        scan.feed(&buf[..n]);
    }
    scan.finish();
    let report = scan.report();
    println!("{} {}", started.elapsed().as_secs_f64(), peak_rss_mib());
    println!("{}", serde_json::to_string(&report).unwrap());
}

/// The scan's answer against what the generator wrote down while writing the logs.
fn check(which: usize, report: &serde_json::Value, expected: &serde_json::Value) -> String {
    let app = &expected["application"];
    let sec = &expected["security"];
    let near = |a: f64, b: f64, rel: f64| (a - b).abs() <= rel * b.abs().max(1e-9);
    let ok = match which {
        0 => {
            let want: u64 = ["ERROR", "CRITICAL", "FATAL"]
                .iter()
                .map(|l| app["lines_by_level"][l].as_u64().unwrap_or(0))
                .sum();
            report["errors"]["total"].as_u64() == Some(want)
        }
        1 => {
            let want: u64 = sec["events"]
                .as_object()
                .unwrap()
                .values()
                .map(|v| v.as_u64().unwrap())
                .sum();
            report["security"]["total"].as_u64() == Some(want)
        }
        2 => {
            let d = &report["durations"];
            let e = &app["duration_ms"];
            let f = |v: &serde_json::Value, k: &str| v[k].as_f64().unwrap();
            d["count"] == e["count"]
                // The report rounds to 1 µs; percentiles come from a 1% histogram.
                && (f(d, "mean_ms") - f(e, "mean")).abs() <= 0.0005
                && near(f(d, "max_ms"), f(e, "max"), 1e-9)
                && near(f(d, "p50_ms"), f(e, "p50"), 0.01)
                && near(f(d, "p99_ms"), f(e, "p99"), 0.01)
        }
        _ => {
            let got: Vec<(String, u64)> = report["rate_limits"]["top_ips"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| {
                    (
                        c["key"].as_str().unwrap().into(),
                        c["count"].as_u64().unwrap(),
                    )
                })
                .collect();
            let want: Vec<(String, u64)> = sec["rate_limit_top10"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| {
                    (
                        c["client_ip"].as_str().unwrap().into(),
                        c["count"].as_u64().unwrap(),
                    )
                })
                .collect();
            got == want
        }
    };
    if ok {
        "matches".into()
    } else {
        format!("DIFFERS: {report}")
    }
}

/// Child: a shell pipeline, printing `seconds rss_mib` (the largest process of the pipeline,
/// from `getrusage(RUSAGE_CHILDREN)`).
fn child_shell(which: usize, dir: &Path) {
    let started = Instant::now();
    let status = Command::new("bash")
        .arg("-c")
        .arg(PIPELINES[which].1)
        .current_dir(dir)
        .status()
        .unwrap();
    assert!(status.success(), "{}", PIPELINES[which].1);
    let secs = started.elapsed().as_secs_f64();
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage fills the struct it is given.
    unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut ru) };
    println!("{secs} {}", ru.ru_maxrss as f64 / 1024.0);
}

/// Child: `analyze_logs` on mcp-03 over ssh, reading the bench logs copied there.
fn child_ssh(config: &Path) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let config = runbook_mcp::config::Config::load(Some(config)).unwrap();
    let engine =
        runbook_mcp::runtime::engine(config, runbook_mcp::engine::Mode::default()).unwrap();
    let args = serde_json::json!({"hosts": ["mcp-03"], "since": "30d",
        "max_bytes_per_host": 4u64 << 30});
    let started = Instant::now();
    let out = rt
        .block_on(engine.call("analyze_logs", args.as_object().cloned()))
        .unwrap();
    let secs = started.elapsed().as_secs_f64();
    let lines = out.structured["total"]["lines"].as_u64().unwrap_or(0);
    assert!(lines > 0, "{}", out.summary);
    println!("{secs} {}", peak_rss_mib());
}

/// A child's `seconds rss_mib` line, and what it printed after it.
fn run_child(args: &[String]) -> (f64, f64, String) {
    let out = Command::new(std::env::current_exe().unwrap())
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (first, rest) = text.split_once('\n').unwrap_or((&text, ""));
    let mut it = first.split_whitespace().map(|x| x.parse::<f64>().unwrap());
    (
        it.next().unwrap(),
        it.next().unwrap(),
        rest.trim().to_string(),
    )
}

/// A copy of the lab config with a service on mcp-03 whose logs are the bench's files.
fn ssh_config(dir: &Path) -> PathBuf {
    let lab = std::env::var("RUNBOOK_LAB_DIR").unwrap_or_else(|_| "/tmp/runbook-lab".into());
    let host_logs = Path::new(&lab).join("hosts/mcp-03/log/cctelegram");
    for f in ["application.log", "security.log"] {
        std::fs::copy(dir.join(f), host_logs.join(format!("bench-{f}"))).unwrap();
    }
    let mut text = std::fs::read_to_string(Path::new(&lab).join("runbook-mcp.toml")).unwrap();
    text.push_str(
        "\n[services.bench-logs]\nmanager = \"systemd\"\nhosts = [\"mcp-03\"]\n\
         logs = { application = \"/var/log/cctelegram/bench-application.log\", \
         security = \"/var/log/cctelegram/bench-security.log\" }\n",
    );
    let path = std::env::temp_dir().join("runbook-bench-logs.toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    match args.first().map(String::as_str) {
        Some("child-scan") => return child_scan(args[1].parse().unwrap(), Path::new(&args[2])),
        Some("child-shell") => return child_shell(args[1].parse().unwrap(), Path::new(&args[2])),
        Some("child-ssh") => return child_ssh(Path::new(&args[1])),
        _ => {}
    }
    let dir = PathBuf::from(
        args.iter()
            .find(|a| !a.starts_with("--"))
            .map_or("/tmp/logbench", String::as_str),
    );
    let size = |f: &str| std::fs::metadata(dir.join(f)).map(|m| m.len()).unwrap_or(0);
    assert!(
        size("application.log") > 0 && size("security.log") > 0,
        "no logs in {}: python3 benches/loggen.py {}",
        dir.display(),
        dir.display()
    );
    println!(
        "application.log {:.0} MiB, security.log {:.0} MiB\n",
        size("application.log") as f64 / 1048576.0,
        size("security.log") as f64 / 1048576.0
    );
    // Both sides read from the page cache: one read of each file before anything is timed.
    for f in ["application.log", "security.log"] {
        std::io::copy(
            &mut std::fs::File::open(dir.join(f)).unwrap(),
            &mut std::io::sink(),
        )
        .unwrap();
    }
    let expected: Option<serde_json::Value> = std::fs::read_to_string(dir.join("expected.json"))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok());
    println!(
        "| analysis | runbook pipeline | RSS | analyze_logs scan | RSS | speed-up | vs expected.json |"
    );
    println!("|---|---|---|---|---|---|---|");
    for (i, (name, _, file, _)) in PIPELINES.iter().enumerate() {
        let (sh, sh_rss, _) = run_child(&[
            "child-shell".into(),
            i.to_string(),
            dir.display().to_string(),
        ]);
        let (rs, rs_rss, report) = run_child(&[
            "child-scan".into(),
            i.to_string(),
            dir.join(file).display().to_string(),
        ]);
        let verdict = match &expected {
            Some(e) => check(i, &serde_json::from_str(&report).unwrap(), e),
            None => "no expected.json".into(),
        };
        println!(
            "| {name} | {sh:.2} s | {sh_rss:.0} MiB | {rs:.2} s | {rs_rss:.0} MiB | {:.1}× | {verdict} |",
            sh / rs
        );
    }
    if args.iter().any(|a| a == "--ssh") {
        let config = ssh_config(&dir);
        let (secs, rss, _) = run_child(&["child-ssh".into(), config.display().to_string()]);
        println!(
            "\nanalyze_logs on mcp-03 over ssh, both logs, all four analyses, end to end: \
             {secs:.2} s, peak RSS {rss:.0} MiB"
        );
    }
}
