//! Findings: a measured value or state, graded ok / warn / critical against named thresholds.
//!
//! The thresholds are the runbook's P0/P1 triggers made explicit, and live here as data so a
//! finding's message can quote the limit it crossed and a test can pin each boundary.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::ServiceState;

/// How bad a finding is, ordered: ok < warn < critical.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Within limits.
    Ok,
    /// Worth a look; not yet an outage.
    Warn,
    /// Outage or imminent outage: act now.
    Critical,
}

/// One graded observation.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct Finding {
    /// Diagnostics section it belongs to, e.g. `service_status`, `system_resources`, `logs`.
    pub section: String,
    /// What was checked, e.g. `disk /var/log`, `memory`, `cctelegram-mcp`.
    pub check: String,
    /// How bad it is.
    pub severity: Severity,
    /// One sentence a person can act on, with the measured value and the limit.
    pub message: String,
}

impl Finding {
    /// A finding with the given parts.
    pub fn new(
        section: impl Into<String>,
        check: impl Into<String>,
        severity: Severity,
        message: impl Into<String>,
    ) -> Self {
        Self {
            section: section.into(),
            check: check.into(),
            severity,
            message: message.into(),
        }
    }
}

/// Two limits on a value where higher is worse: at or above `warn` warns, at or above
/// `critical` is critical.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Thresholds {
    /// Lowest value that warns.
    pub warn: f64,
    /// Lowest value that is critical.
    pub critical: f64,
}

impl Thresholds {
    /// Grade `value`. NaN (a value that could not be measured) grades as warn: not known
    /// to be fine.
    pub fn grade(&self, value: f64) -> Severity {
        if value.is_nan() {
            Severity::Warn
        } else if value >= self.critical {
            Severity::Critical
        } else if value >= self.warn {
            Severity::Warn
        } else {
            Severity::Ok
        }
    }
}

/// Disk space used, in percent of the filesystem.
pub const DISK_USED_PERCENT: Thresholds = Thresholds {
    warn: 80.0,
    critical: 90.0,
};
/// Memory used (total − available), in percent.
pub const MEMORY_USED_PERCENT: Thresholds = Thresholds {
    warn: 85.0,
    critical: 95.0,
};
/// One-minute load average divided by the number of CPUs.
pub const LOAD_PER_CPU: Thresholds = Thresholds {
    warn: 1.5,
    critical: 3.0,
};
/// Error-level log lines in the window looked at.
pub const RECENT_ERRORS: Thresholds = Thresholds {
    warn: 1.0,
    critical: 5.0,
};
/// The HTTP status a health endpoint must answer with.
pub const HEALTHY_HTTP_STATUS: u16 = 200;

/// Grade a disk's used percentage.
pub fn grade_disk(used_percent: f64) -> Severity {
    DISK_USED_PERCENT.grade(used_percent)
}

/// Grade memory used percentage.
pub fn grade_memory(used_percent: f64) -> Severity {
    MEMORY_USED_PERCENT.grade(used_percent)
}

/// Grade the one-minute load average against the CPU count (0 CPUs reads as 1).
pub fn grade_load(load1: f64, cpus: u32) -> Severity {
    LOAD_PER_CPU.grade(load1 / f64::from(cpus.max(1)))
}

/// Grade a count of recent error lines.
pub fn grade_error_count(errors: u64) -> Severity {
    RECENT_ERRORS.grade(errors as f64)
}

/// Grade a health check: `Some(status)` when the endpoint answered, `None` when it did not
/// (timeout, refused). Only 200 is healthy.
pub fn grade_http(status: Option<u16>) -> Severity {
    match status {
        Some(HEALTHY_HTTP_STATUS) => Severity::Ok,
        _ => Severity::Critical,
    }
}

/// Grade a service state: running is ok; down, failed or missing is critical; in between
/// (starting, degraded, unknown) warns.
pub fn grade_service(state: ServiceState) -> Severity {
    match state {
        ServiceState::Running => Severity::Ok,
        ServiceState::Stopped | ServiceState::Failed | ServiceState::NotFound => Severity::Critical,
        ServiceState::Activating | ServiceState::Degraded | ServiceState::Unknown => Severity::Warn,
    }
}

/// The worst severity among `findings` (ok when there are none).
pub fn worst(findings: &[Finding]) -> Severity {
    findings
        .iter()
        .map(|f| f.severity)
        .max()
        .unwrap_or(Severity::Ok)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analyze::resources::{parse_df, parse_loadavg, parse_meminfo, parse_nproc};

    #[test]
    fn boundaries() {
        use Severity::*;
        type Grade = fn(f64) -> Severity;
        let cases: [(Grade, f64, Severity); 8] = [
            (grade_disk, 79.9, Ok),
            (grade_disk, 80.0, Warn),
            (grade_disk, 90.0, Critical),
            (grade_memory, 84.9, Ok),
            (grade_memory, 85.0, Warn),
            (grade_memory, 95.0, Critical),
            (grade_disk, f64::NAN, Warn),
            (grade_memory, 100.0, Critical),
        ];
        for (grade, value, want) in cases {
            assert_eq!(grade(value), want, "{value}");
        }
        assert_eq!(grade_load(2.9, 2), Ok);
        assert_eq!(grade_load(3.0, 2), Warn);
        assert_eq!(grade_load(6.0, 2), Critical);
        assert_eq!(grade_load(1.5, 0), Warn, "0 CPUs reads as 1");
        assert_eq!(grade_error_count(0), Ok);
        assert_eq!(grade_error_count(1), Warn);
        assert_eq!(grade_error_count(5), Critical);
        assert_eq!(grade_http(Some(200)), Ok);
        assert_eq!(grade_http(Some(204)), Critical);
        assert_eq!(grade_http(Some(502)), Critical);
        assert_eq!(grade_http(None), Critical);
    }

    #[test]
    fn services() {
        assert_eq!(grade_service(ServiceState::Running), Severity::Ok);
        for down in [
            ServiceState::Stopped,
            ServiceState::Failed,
            ServiceState::NotFound,
        ] {
            assert_eq!(grade_service(down), Severity::Critical);
        }
        for between in [
            ServiceState::Activating,
            ServiceState::Degraded,
            ServiceState::Unknown,
        ] {
            assert_eq!(grade_service(between), Severity::Warn);
        }
    }

    #[test]
    fn graded_real_captures() {
        let spaces = parse_df(include_str!("fixtures/df_spaces.txt")).unwrap();
        let grades: Vec<_> = spaces
            .iter()
            .map(|d| grade_disk(d.used_percent.unwrap()))
            .collect();
        assert_eq!(grades, vec![Severity::Ok, Severity::Warn], "14% and 88%");
        let mem = parse_meminfo(include_str!("fixtures/proc_meminfo.txt")).unwrap();
        assert_eq!(grade_memory(mem.used_percent), Severity::Ok);
        let load = parse_loadavg(include_str!("fixtures/proc_loadavg.txt")).unwrap();
        let cpus = parse_nproc(include_str!("fixtures/nproc.txt")).unwrap();
        assert_eq!(grade_load(load.load1, cpus), Severity::Ok);
    }

    #[test]
    fn worst_of_findings_and_serialized_names() {
        assert_eq!(worst(&[]), Severity::Ok);
        let findings = vec![
            Finding::new(
                "system_resources",
                "memory",
                Severity::Ok,
                "memory 12% used",
            ),
            Finding::new(
                "system_resources",
                "disk /",
                Severity::Critical,
                "disk / 93% used (limit 90%)",
            ),
            Finding::new("logs", "errors", Severity::Warn, "2 errors"),
        ];
        assert_eq!(worst(&findings), Severity::Critical);
        let json = serde_json::to_value(&findings[1]).unwrap();
        assert_eq!(json["severity"], "critical");
        assert_eq!(json["check"], "disk /");
    }
}
