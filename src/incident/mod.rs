//! Incidents: records in the state directory (`incidents/INC-….json`, one file each, written
//! whole under a lock, so several servers share them and a restart keeps them), and the
//! runbook's tables — severities with their response times, incident types, the checklist,
//! the escalation levels. The timeline is not stored here: it is a view over the audit log
//! (`Record::Call` lines carry the incident id).

pub mod store;
pub mod tables;

pub use store::Store;

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The runbook's severity levels.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
pub enum Severity {
    /// Complete service outage: respond within 15 minutes.
    P0,
    /// Major functionality impaired: within 1 hour.
    P1,
    /// Minor functionality impaired: within 4 hours.
    P2,
    /// Cosmetic or documentation issues: next business day.
    P3,
}

/// The runbook's incident types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    ServiceOutage,
    PerformanceDegradation,
    SecurityIncident,
    DataLoss,
    IntegrationFailure,
    CapacityIssues,
}

/// Where an incident stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Investigating,
    Mitigating,
    Monitoring,
    Resolved,
}

/// A checklist item as done by someone.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Done {
    pub by: String,
    pub at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// How an incident was resolved.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Resolution {
    pub at: String,
    pub by: String,
    pub summary: String,
    /// The audit sequence number of the `verify_recovery` call that passed, when one did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verified_by_seq: Option<u64>,
    /// Why it was resolved without a passing `verify_recovery`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub override_reason: Option<String>,
}

/// One incident.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Incident {
    /// `INC-20261201-1a2b3c`.
    pub id: String,
    pub title: String,
    pub severity: Severity,
    pub kind: Kind,
    pub status: Status,
    pub commander: String,
    /// Who opened it (the kernel's account or an HTTP token's name, never a client's claim).
    pub opened_by: String,
    pub opened_at: String,
    /// Respond by: opened + the severity's response time.
    pub deadline: String,
    /// Principals that joined it.
    #[serde(default)]
    pub members: Vec<String>,
    /// Checklist items done, by the runbook's item text.
    #[serde(default)]
    pub checklist: BTreeMap<String, Done>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolution: Option<Resolution>,
    /// What monitoring knew when the incident was opened.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detection: Option<Detection>,
    /// What the notification APIs answered, kept for the next message: `slack_thread:#incidents`
    /// → the thread's `ts`, `slack_channel` → the incident's channel, `statuspage` → the
    /// Statuspage incident id.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub links: BTreeMap<String, String>,
}

/// The firing alerts at opening: detection time is the earliest `activeAt`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Detection {
    pub at: String,
    /// `alertname host=…` of each firing alert.
    pub alerts: Vec<String>,
}

impl Incident {
    pub fn is_open(&self) -> bool {
        self.status != Status::Resolved
    }
}
