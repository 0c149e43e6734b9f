//! `/proc/loadavg`, `/proc/meminfo`, `/proc/uptime` and `nproc`.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::analyze::ParseError;
use crate::analyze::error::number;

/// Load averages and task counts from `/proc/loadavg`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct LoadAverage {
    /// Average number of runnable (and uninterruptible) tasks over the last minute.
    pub load1: f64,
    /// Same over the last 5 minutes.
    pub load5: f64,
    /// Same over the last 15 minutes.
    pub load15: f64,
    /// Tasks runnable right now.
    pub running_tasks: u32,
    /// Tasks (processes and threads) that exist right now.
    pub total_tasks: u32,
}

/// Memory and swap from `/proc/meminfo`, in bytes.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct MemoryUsage {
    /// Physical memory (`MemTotal`).
    pub total_bytes: u64,
    /// Memory available for new work without swapping (`MemAvailable`; page cache counts as
    /// available, which is why this, not `MemFree`, is the number to watch).
    pub available_bytes: u64,
    /// `total_bytes - available_bytes`.
    pub used_bytes: u64,
    /// `used_bytes` as a percentage of `total_bytes`, one decimal.
    pub used_percent: f64,
    /// Swap space (`SwapTotal`); 0 when there is none.
    pub swap_total_bytes: u64,
    /// Swap in use (`SwapTotal - SwapFree`).
    pub swap_used_bytes: u64,
}

/// Parse `/proc/loadavg`: `0.40 0.46 0.20 1/85 7463`.
pub fn parse_loadavg(text: &str) -> Result<LoadAverage, ParseError> {
    const INPUT: &str = "/proc/loadavg";
    let line = text
        .lines()
        .next()
        .ok_or(ParseError::Empty { input: INPUT })?;
    let fields: Vec<&str> = line.split_whitespace().collect();
    let [load1, load5, load15, tasks, _last_pid] = fields[..] else {
        return Err(ParseError::line(INPUT, 1, "expected 5 fields", line));
    };
    let (running, total) = tasks
        .split_once('/')
        .ok_or_else(|| ParseError::field(INPUT, 1, "tasks", "expected RUNNING/TOTAL", tasks))?;
    Ok(LoadAverage {
        load1: number(INPUT, 1, "load1", load1)?,
        load5: number(INPUT, 1, "load5", load5)?,
        load15: number(INPUT, 1, "load15", load15)?,
        running_tasks: number(INPUT, 1, "running tasks", running)?,
        total_tasks: number(INPUT, 1, "total tasks", total)?,
    })
}

/// Parse `/proc/meminfo` (`Key:   123 kB` lines).
///
/// `MemAvailable` exists since Linux 3.14; on an older kernel `MemFree + Buffers + Cached`
/// stands in for it.
pub fn parse_meminfo(text: &str) -> Result<MemoryUsage, ParseError> {
    const INPUT: &str = "/proc/meminfo";
    if text.trim().is_empty() {
        return Err(ParseError::Empty { input: INPUT });
    }
    let mut values: Vec<(&str, u64)> = Vec::new();
    for (index, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let (key, rest) = line
            .split_once(':')
            .ok_or_else(|| ParseError::line(INPUT, index + 1, "expected `Key: value`", line))?;
        let mut parts = rest.split_whitespace();
        let amount: u64 = number(INPUT, index + 1, "value", parts.next().unwrap_or(""))?;
        // Sizes carry `kB` (which means KiB); counts such as HugePages_Total carry no unit.
        let bytes = match parts.next() {
            Some("kB") => amount.saturating_mul(1024),
            None => amount,
            Some(unit) => {
                return Err(ParseError::field(
                    INPUT,
                    index + 1,
                    "unit",
                    "expected kB",
                    unit,
                ));
            }
        };
        values.push((key.trim(), bytes));
    }
    let get = |key: &str| values.iter().find(|(k, _)| *k == key).map(|(_, v)| *v);
    let total = get("MemTotal")
        .filter(|t| *t > 0)
        .ok_or_else(|| ParseError::document(INPUT, "no MemTotal"))?;
    let available = get("MemAvailable")
        .or_else(|| {
            Some(get("MemFree")? + get("Buffers").unwrap_or(0) + get("Cached").unwrap_or(0))
        })
        .ok_or_else(|| ParseError::document(INPUT, "neither MemAvailable nor MemFree"))?
        .min(total);
    let used = total - available;
    let swap_total = get("SwapTotal").unwrap_or(0);
    Ok(MemoryUsage {
        total_bytes: total,
        available_bytes: available,
        used_bytes: used,
        used_percent: percent(used, total),
        swap_total_bytes: swap_total,
        swap_used_bytes: swap_total.saturating_sub(get("SwapFree").unwrap_or(swap_total)),
    })
}

/// Parse `/proc/uptime` (`213.89 255.16`): seconds since boot.
pub fn parse_uptime(text: &str) -> Result<f64, ParseError> {
    const INPUT: &str = "/proc/uptime";
    let first = text
        .split_whitespace()
        .next()
        .ok_or(ParseError::Empty { input: INPUT })?;
    let seconds: f64 = number(INPUT, 1, "uptime", first)?;
    if !seconds.is_finite() || seconds < 0.0 {
        return Err(ParseError::field(
            INPUT,
            1,
            "uptime",
            "not a duration",
            first,
        ));
    }
    Ok(seconds)
}

/// Parse `nproc` output: the number of CPUs this process may use (at least 1).
pub fn parse_nproc(text: &str) -> Result<u32, ParseError> {
    const INPUT: &str = "nproc";
    let word = text.trim();
    if word.is_empty() {
        return Err(ParseError::Empty { input: INPUT });
    }
    match number(INPUT, 1, "cpus", word)? {
        0 => Err(ParseError::field(INPUT, 1, "cpus", "zero CPUs", word)),
        n => Ok(n),
    }
}

/// `part / whole * 100`, one decimal; 0 when `whole` is 0.
pub(crate) fn percent(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        return 0.0;
    }
    (part as f64 / whole as f64 * 1000.0).round() / 10.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn real_loadavg() {
        let load = parse_loadavg(include_str!("../fixtures/proc_loadavg.txt")).unwrap();
        assert_eq!(
            load,
            LoadAverage {
                load1: 0.40,
                load5: 0.46,
                load15: 0.20,
                running_tasks: 1,
                total_tasks: 85
            }
        );
    }

    #[test]
    fn real_meminfo() {
        let mem = parse_meminfo(include_str!("../fixtures/proc_meminfo.txt")).unwrap();
        assert_eq!(mem.total_bytes, 24_684_084 * 1024);
        assert_eq!(mem.available_bytes, 24_295_796 * 1024);
        assert_eq!(mem.used_bytes, (24_684_084 - 24_295_796) * 1024);
        assert_eq!(mem.used_percent, 1.6);
        assert_eq!((mem.swap_total_bytes, mem.swap_used_bytes), (0, 0));
    }

    #[test]
    fn meminfo_without_memavailable_and_with_swap() {
        let text = "MemTotal: 1000 kB\nMemFree: 100 kB\nBuffers: 50 kB\nCached: 250 kB\n\
                    SwapTotal: 2000 kB\nSwapFree: 1500 kB\nHugePages_Total:       0\n";
        let mem = parse_meminfo(text).unwrap();
        assert_eq!(mem.available_bytes, 400 * 1024);
        assert_eq!(mem.used_percent, 60.0);
        assert_eq!(mem.swap_used_bytes, 500 * 1024);
    }

    #[test]
    fn real_uptime_and_nproc() {
        assert_eq!(
            parse_uptime(include_str!("../fixtures/proc_uptime.txt")).unwrap(),
            213.89
        );
        assert_eq!(
            parse_nproc(include_str!("../fixtures/nproc.txt")).unwrap(),
            2
        );
    }

    #[test]
    fn malformed_proc_files_are_errors() {
        assert!(matches!(parse_loadavg(""), Err(ParseError::Empty { .. })));
        assert!(matches!(
            parse_loadavg("0.1 0.2 0.3"),
            Err(ParseError::Line { .. })
        ));
        assert!(matches!(
            parse_loadavg("0.1 x 0.3 1/2 3"),
            Err(ParseError::Field { field: "load5", .. })
        ));
        assert!(parse_loadavg("0.1 0.2 0.3 12 3").is_err());
        assert!(matches!(
            parse_meminfo("MemFree: 10 kB\n"),
            Err(ParseError::Document { .. })
        ));
        assert!(matches!(
            parse_meminfo("MemTotal: 10 kB\nbroken line\n"),
            Err(ParseError::Line { line: 2, .. })
        ));
        assert!(parse_meminfo("MemTotal: 10 MB\n").is_err());
        assert!(parse_meminfo("MemTotal: lots kB\n").is_err());
        assert!(parse_uptime("-3 1").is_err());
        assert!(parse_uptime("NaN 1").is_err());
        assert!(parse_nproc("0\n").is_err());
        assert!(parse_nproc("two").is_err());
        assert!(parse_nproc("").is_err());
    }
}
