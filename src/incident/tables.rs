//! The runbook's tables as data: response times, classification from symptoms, the checklist,
//! and escalation by severity and elapsed time.

use super::{Kind, Severity};

impl Severity {
    /// The runbook's response time, in minutes (P3: the next business day, taken as 24 hours).
    pub fn response_minutes(self) -> u64 {
        match self {
            Severity::P0 => 15,
            Severity::P1 => 60,
            Severity::P2 => 240,
            Severity::P3 => 24 * 60,
        }
    }

    pub fn description(self) -> &'static str {
        match self {
            Severity::P0 => "complete service outage",
            Severity::P1 => "major functionality impaired",
            Severity::P2 => "minor functionality impaired",
            Severity::P3 => "cosmetic or documentation issue",
        }
    }
}

/// A symptom the caller can name, with the severity and type the runbook gives it.
pub struct Rule {
    pub symptom: &'static str,
    pub severity: Severity,
    pub kind: Kind,
    pub why: &'static str,
}

/// Symptoms, most severe first; a classification takes the most severe one named.
pub const RULES: &[Rule] = &[
    Rule {
        symptom: "service_down",
        severity: Severity::P0,
        kind: Kind::ServiceOutage,
        why: "service down is the runbook's P0 example",
    },
    Rule {
        symptom: "data_loss",
        severity: Severity::P0,
        kind: Kind::DataLoss,
        why: "data loss is the runbook's P0 example",
    },
    Rule {
        symptom: "security_breach",
        severity: Severity::P0,
        kind: Kind::SecurityIncident,
        why: "a security breach is the runbook's P0 example",
    },
    Rule {
        symptom: "high_error_rate",
        severity: Severity::P1,
        kind: Kind::ServiceOutage,
        why: "high error rates are the runbook's P1 example",
    },
    Rule {
        symptom: "severe_latency",
        severity: Severity::P1,
        kind: Kind::PerformanceDegradation,
        why: "significant performance degradation is P1",
    },
    Rule {
        symptom: "resource_exhaustion",
        severity: Severity::P1,
        kind: Kind::CapacityIssues,
        why: "exhausted memory or disk is about to become an outage",
    },
    Rule {
        symptom: "dependency_failure",
        severity: Severity::P1,
        kind: Kind::IntegrationFailure,
        why: "a failing external dependency impairs major functionality",
    },
    Rule {
        symptom: "intermittent_errors",
        severity: Severity::P2,
        kind: Kind::ServiceOutage,
        why: "intermittent errors are the runbook's P2 example",
    },
    Rule {
        symptom: "moderate_latency",
        severity: Severity::P2,
        kind: Kind::PerformanceDegradation,
        why: "moderate performance issues are P2",
    },
    Rule {
        symptom: "suspicious_activity",
        severity: Severity::P2,
        kind: Kind::SecurityIncident,
        why: "suspicious activity without a breach: investigate within hours",
    },
    Rule {
        symptom: "documentation_error",
        severity: Severity::P3,
        kind: Kind::IntegrationFailure,
        why: "documentation errors are the runbook's P3 example",
    },
    Rule {
        symptom: "cosmetic",
        severity: Severity::P3,
        kind: Kind::PerformanceDegradation,
        why: "minor UI issues are P3",
    },
];

/// The runbook's checklist, by phase.
pub const CHECKLIST: &[(&str, &[&str])] = &[
    (
        "Detection & Response",
        &[
            "Alert acknowledged within SLA",
            "Incident channel created",
            "On-call engineer notified",
            "Initial assessment completed",
            "Severity level assigned",
        ],
    ),
    (
        "Investigation & Mitigation",
        &[
            "Root cause investigation initiated",
            "Service logs analyzed",
            "System resources checked",
            "External dependencies verified",
            "Mitigation strategy selected",
            "Fix implemented and tested",
        ],
    ),
    (
        "Resolution & Recovery",
        &[
            "Service functionality restored",
            "Performance validated",
            "Monitoring confirms stable state",
            "Users notified of resolution",
            "Incident status updated",
        ],
    ),
    (
        "Post-Incident",
        &[
            "Post-mortem scheduled",
            "Root cause analysis completed",
            "Action items identified and assigned",
            "Documentation updated",
            "Process improvements implemented",
        ],
    ),
];

/// Every checklist item, in order.
pub fn checklist_items() -> impl Iterator<Item = &'static str> {
    CHECKLIST
        .iter()
        .flat_map(|(_, items)| items.iter().copied())
}

/// The runbook's internal escalation levels: (level, team, from minute, to minute).
pub const LEVELS: &[(&str, &str, u64, Option<u64>)] = &[
    ("L1", "Operations Team", 0, Some(15)),
    ("L2", "Engineering Team", 15, Some(45)),
    ("L3", "Engineering Leadership", 45, None),
];

/// The level an incident has reached after `minutes`: P0 starts at L1 and climbs with time as
/// the runbook says; P1 climbs at half that pace; P2 and P3 stay at L1 until their deadline.
pub fn level_at(severity: Severity, minutes: u64) -> usize {
    let pace = match severity {
        Severity::P0 => 1,
        Severity::P1 => 2,
        Severity::P2 | Severity::P3 => return usize::from(minutes > severity.response_minutes()),
    };
    LEVELS
        .iter()
        .rposition(|(_, _, from, _)| minutes >= from * pace)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escalation_follows_the_runbook_for_p0() {
        assert_eq!(level_at(Severity::P0, 0), 0);
        assert_eq!(level_at(Severity::P0, 15), 1);
        assert_eq!(level_at(Severity::P0, 44), 1);
        assert_eq!(level_at(Severity::P0, 45), 2);
        assert_eq!(level_at(Severity::P1, 29), 0);
        assert_eq!(level_at(Severity::P1, 30), 1);
        assert_eq!(level_at(Severity::P2, 200), 0);
        assert_eq!(level_at(Severity::P2, 241), 1);
        assert_eq!(checklist_items().count(), 21);
    }
}
