//! `check_system_resources`: load, memory, disks and top processes per host, read from `/proc`,
//! `df` and `ps` — `top -bn1` would add 0.16 s of sampling delay for less exact numbers.

use std::sync::Arc;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::analyze::resources::{self as res, DiskUsage, LoadAverage, MemoryUsage, ProcessInfo};
use crate::config::Host;
use crate::engine::fanout::{self, HostResult};
use crate::engine::{Ctx, Effect, Name, Tool, ToolError, ToolMeta, Toolset};
use crate::exec::{Cmd, ExecError};

pub struct CheckSystemResources;

/// Parameters of `check_system_resources`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// Inventory host names; default: every host.
    #[serde(default, deserialize_with = "crate::engine::args::names")]
    pub hosts: Option<Vec<Name>>,
    /// How many processes to list, by CPU use (default 10, at most 50).
    #[serde(default = "ten")]
    #[schemars(range(min = 0, max = 50))]
    pub top: u32,
}

fn ten() -> u32 {
    10
}

/// Resources per host.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Output {
    pub hosts: Vec<HostResult<Resources>>,
}

/// Resources of one host.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Resources {
    /// Online CPUs.
    pub cpus: u32,
    pub load: LoadAverage,
    pub memory: MemoryUsage,
    pub uptime_seconds: f64,
    /// Filesystems of the configured paths.
    pub disks: Vec<DiskUsage>,
    /// Processes using the most CPU (lifetime average, as `ps` reports it).
    pub top_processes: Vec<ProcessInfo>,
}

impl Tool for CheckSystemResources {
    const META: ToolMeta = ToolMeta {
        name: "check_system_resources",
        title: "Check system resources",
        description: "Reads load averages, CPU count, memory, disk usage of the configured paths \
            and the top processes on each host, in parallel. Use it when an instance is slow or \
            crashing, to spot memory or disk exhaustion and runaway processes. Returns per host \
            numbers (bytes and percent), no interpretation.",
        effect: Effect::Read,
        toolset: Toolset::Assess,
    };
    type Params = Params;
    type Output = Output;

    async fn run(ctx: Arc<Ctx>, p: Params) -> Result<Output, ToolError> {
        if p.top > 50 {
            return Err(ToolError::invalid(
                "top",
                format!("{} is out of range 0..=50", p.top),
            ));
        }
        let hosts = fanout::select_hosts(&ctx, &p.hosts)?;
        let deadline = ctx.fleet.limits().timeout * 2;
        let top = p.top as usize;
        let results = fanout::per_host(&ctx, hosts, deadline, |ctx, host| async move {
            collect(&ctx, &host, top).await
        })
        .await;
        Ok(Output { hosts: results })
    }

    fn summary(out: &Output) -> String {
        use crate::analyze::findings::{Severity, grade_disk, grade_load, grade_memory};
        let mut d = crate::digest::Digest::new(fanout::hosts_line(&out.hosts));
        let mut fine = Vec::new();
        for r in &out.hosts {
            let Some(v) = &r.result else { continue };
            let mut bad = Vec::new();
            if grade_load(v.load.load1, v.cpus) != Severity::Ok {
                bad.push(format!("load {:.2} on {} cpu(s)", v.load.load1, v.cpus));
            }
            if grade_memory(v.memory.used_percent) != Severity::Ok {
                bad.push(format!("memory {:.0}% used", v.memory.used_percent));
            }
            for disk in &v.disks {
                if let Some(pct) = disk.used_percent
                    && grade_disk(pct) != Severity::Ok
                {
                    let free = disk
                        .avail_bytes
                        .map(|b| format!(", {} free", crate::digest::bytes(b as f64)))
                        .unwrap_or_default();
                    bad.push(format!("disk {} {pct:.0}% used{free}", disk.mounted_on));
                }
            }
            if bad.is_empty() {
                fine.push(r.host.as_str());
            } else {
                d.problem(format!("{}: {}", r.host, bad.join(", ")));
            }
            let worst = v
                .disks
                .iter()
                .filter_map(|d| d.used_percent)
                .fold(0.0_f64, f64::max);
            d.figure(format!(
                "{} load {:.2}/{} mem {:.0}% disk {worst:.0}%",
                r.host, v.load.load1, v.cpus, v.memory.used_percent
            ));
        }
        if !fine.is_empty() {
            d.ok(format!(
                "{}: load, memory and disks within limits",
                crate::digest::names(&fine)
            ));
        }
        if d.has_problems() {
            d.next("run_diagnostics on the flagged hosts; get_recent_logs for what fills a disk");
        }
        d.render()
    }

    fn is_error(out: &Output) -> bool {
        out.hosts.iter().all(|h| !h.is_ok())
    }
}

/// Reads everything in four concurrent commands over the host's one connection.
pub(super) async fn collect(ctx: &Ctx, host: &Host, top: usize) -> Result<Resources, ExecError> {
    let disks = &ctx.config.diagnostics.disks;
    // One read for the small files; the online-CPU list ("0-1") saves a separate `nproc`.
    let proc_cmd = Cmd::new([
        "cat",
        "/proc/loadavg",
        "/proc/uptime",
        "/sys/devices/system/cpu/online",
        "/proc/meminfo",
    ]);
    let mut df = vec![
        "df".to_string(),
        "-P".into(),
        "-B1".into(),
        "-T".into(),
        "--".into(),
    ];
    df.extend(disks.iter().cloned());
    let df_cmd = Cmd::new(df);
    let ps_cmd = Cmd::new(res::PS_ARGV.iter().copied());
    let (procs, df, ps) = tokio::join!(
        ctx.fleet.run(host, &proc_cmd),
        ctx.fleet.run(host, &df_cmd),
        ctx.fleet.run(host, &ps_cmd),
    );
    let procs = procs?;
    let bad = |what: &str, e: &dyn std::fmt::Display| ExecError::Failed(format!("{what}: {e}"));
    let mut lines = procs.stdout.splitn(4, '\n');
    let load_line = lines.next().unwrap_or_default();
    let uptime_line = lines.next().unwrap_or_default();
    let cpus = cpu_count(lines.next().unwrap_or_default());
    let meminfo = lines.next().unwrap_or_default();
    // df exits 1 when one path is missing but still reports the others.
    let df = df?;
    Ok(Resources {
        cpus,
        load: res::parse_loadavg(load_line).map_err(|e| bad("/proc/loadavg", &e))?,
        memory: res::parse_meminfo(meminfo).map_err(|e| bad("/proc/meminfo", &e))?,
        uptime_seconds: res::parse_uptime(uptime_line).map_err(|e| bad("/proc/uptime", &e))?,
        disks: res::parse_df(&df.stdout).map_err(|e| bad("df", &e))?,
        top_processes: res::parse_ps(&ps?.stdout, top).map_err(|e| bad("ps", &e))?,
    })
}

/// Counts CPUs in a kernel CPU list such as `0-3,6,8-9`.
fn cpu_count(list: &str) -> u32 {
    let n: u32 = list
        .trim()
        .split(',')
        .filter_map(|part| match part.split_once('-') {
            Some((a, b)) => Some(b.parse::<u32>().ok()?.checked_sub(a.parse().ok()?)? + 1),
            None => part.parse::<u32>().ok().map(|_| 1),
        })
        .sum();
    n.max(1)
}

#[cfg(test)]
mod tests {
    #[test]
    fn cpu_lists() {
        assert_eq!(super::cpu_count("0-1\n"), 2);
        assert_eq!(super::cpu_count("0-3,6,8-9"), 7);
        assert_eq!(super::cpu_count("0"), 1);
        assert_eq!(super::cpu_count("garbage"), 1);
    }
}
