//! What a sealed plan did: per stage (a host, or the whole call) its status, each step's
//! status, exit code, detail and duration, and the values its `capture` steps read — the one
//! result shape of every mutating tool.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::Serialize;
use serde_json::Value;

/// How a step went.
#[derive(Debug, Clone, Copy, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum StepStatus {
    Ok,
    Failed,
    /// It timed out: whether it took effect is unknown.
    Unknown,
    /// Not run (an earlier step failed, or the guard said there is nothing to do).
    Skipped,
}

/// What one step did.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct StepOutcome {
    /// The step as planned (a `for_each` instance: the command as run).
    pub step: String,
    pub status: StepStatus,
    /// Exit status of a command.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    /// What was seen: error output, a probe's reading, notices.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub detail: String,
    /// What a command printed, when its plan keeps it (first 8 KiB).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output: Option<String>,
    #[schemars(range(min = 0))]
    pub ms: u64,
}

/// How a stage went.
#[derive(Debug, Clone, Copy, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum StageStatus {
    Ok,
    Failed,
    /// A step failed and the compensation ran (see its steps).
    Compensated,
    /// The guard found nothing to do here.
    NothingToDo,
    /// Never started: the plan halted or stopped before it.
    Skipped,
}

/// One stage's outcome: per host, the one shape every mutating tool returns.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct StageOutcome {
    /// The host (or `call`).
    pub stage: String,
    pub status: StageStatus,
    pub steps: Vec<StepOutcome>,
    /// Values `capture` steps read (the rate before the change, the processes before a
    /// restart, the service after it).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub captured: BTreeMap<String, Value>,
}

impl StageOutcome {
    pub fn ok(&self) -> bool {
        matches!(self.status, StageStatus::Ok | StageStatus::NothingToDo)
    }
}

/// The outcome of a sealed plan.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct RunOutcome {
    /// Every stage ran to its end (or had nothing to do).
    pub ok: bool,
    /// Why the plan stopped early, if it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub halted: Option<String>,
    /// An `expect` no longer held: what changed since the plan was approved.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stale: Option<String>,
    pub stages: Vec<StageOutcome>,
}

impl RunOutcome {
    /// The stage of `name`.
    pub fn stage(&self, name: &str) -> Option<&StageOutcome> {
        self.stages.iter().find(|s| s.stage == name)
    }

    /// The first failed step, as `stage: step (detail)`.
    pub fn first_failure(&self) -> Option<String> {
        self.stages.iter().find_map(|s| {
            s.steps
                .iter()
                .find(|st| matches!(st.status, StepStatus::Failed | StepStatus::Unknown))
                .map(|st| {
                    let detail = if st.detail.is_empty() {
                        String::new()
                    } else {
                        format!(" ({})", st.detail)
                    };
                    format!("{}: {}{detail}", s.stage, st.step)
                })
        })
    }

    /// Per stage in a few words, problems first: `mcp-02: FAILED at … (why); mcp-03: not
    /// started; mcp-01: ok`.
    pub fn line(&self) -> String {
        let mut bad = Vec::new();
        let mut good = Vec::new();
        for s in &self.stages {
            let failed = s
                .steps
                .iter()
                .find(|st| matches!(st.status, StepStatus::Failed | StepStatus::Unknown));
            match s.status {
                StageStatus::Ok => good.push(format!("{}: ok", s.stage)),
                StageStatus::NothingToDo => good.push(format!("{}: nothing to do", s.stage)),
                StageStatus::Skipped => bad.push(format!("{}: not started", s.stage)),
                StageStatus::Failed | StageStatus::Compensated => {
                    let at = failed
                        .map(|f| {
                            let d = if f.detail.is_empty() {
                                String::new()
                            } else {
                                format!(" ({})", f.detail)
                            };
                            format!(" at `{}`{d}", f.step)
                        })
                        .unwrap_or_default();
                    let comp = if s.status == StageStatus::Compensated {
                        "; compensated"
                    } else {
                        ""
                    };
                    bad.push(format!("{}: FAILED{at}{comp}", s.stage));
                }
            }
        }
        bad.extend(good);
        bad.join("; ")
    }

    /// Every step that was started, in order, with how it went: what the audit log records.
    pub fn ran(&self) -> String {
        let steps: Vec<String> = self
            .stages
            .iter()
            .flat_map(|s| {
                s.steps
                    .iter()
                    .filter(|st| st.status != StepStatus::Skipped)
                    .map(move |st| {
                        let status = match st.status {
                            StepStatus::Ok => "ok",
                            StepStatus::Failed => "failed",
                            StepStatus::Unknown => "outcome unknown",
                            StepStatus::Skipped => "skipped",
                        };
                        format!("{}: {} ({status})", s.stage, st.step)
                    })
            })
            .collect();
        if steps.is_empty() {
            "nothing".into()
        } else {
            steps.join("; ")
        }
    }

    /// True when some step's outcome is unknown (it timed out).
    pub fn unknown(&self) -> bool {
        self.stages
            .iter()
            .flat_map(|s| &s.steps)
            .any(|s| s.status == StepStatus::Unknown)
    }
}
