//! Tool errors: what the model sees in a failed call (`isError: true`). Every error about an
//! argument names the field, and says that nothing ran.

use std::fmt;

/// Why a call failed as a whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// No such tool (or hidden by the server's mode).
    UnknownTool,
    /// An argument is wrong; nothing ran.
    InvalidArgument,
    /// A dependency of the tool is not configured or not reachable (e.g. Prometheus).
    Unavailable,
    /// The server itself failed.
    Internal,
    /// The gate refused to run a mutating action; `reason` says why.
    Refused,
}

/// Why the gate refused (the reason code the model sees).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Refusal {
    Declined,
    Cancelled,
    Expired,
    Denied,
    Pending,
    Frozen,
    Busy,
    BlastRadius,
    /// The fleet changed since the plan was approved (an `expect` value differs).
    Stale,
}

impl Refusal {
    pub fn code(self) -> &'static str {
        match self {
            Refusal::Declined => "declined",
            Refusal::Cancelled => "cancelled",
            Refusal::Expired => "expired",
            Refusal::Denied => "denied",
            Refusal::Pending => "pending",
            Refusal::Frozen => "frozen",
            Refusal::Busy => "busy",
            Refusal::BlastRadius => "blast_radius",
            Refusal::Stale => "stale",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolError {
    pub code: ErrorCode,
    /// Set when `code` is `Refused`.
    pub refusal: Option<Refusal>,
    /// The offending argument, as a path (`hosts[1]`).
    pub field: Option<String>,
    pub message: String,
}

impl ToolError {
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            code: ErrorCode::InvalidArgument,
            refusal: None,
            field: Some(field.into()),
            message: message.into(),
        }
    }

    pub fn unavailable(message: impl Into<String>) -> Self {
        Self {
            code: ErrorCode::Unavailable,
            refusal: None,
            field: None,
            message: message.into(),
        }
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self {
            code: ErrorCode::Internal,
            refusal: None,
            field: None,
            message: message.into(),
        }
    }

    pub fn refused(reason: Refusal, message: impl Into<String>) -> Self {
        Self {
            code: ErrorCode::Refused,
            refusal: Some(reason),
            field: None,
            message: message.into(),
        }
    }

    /// A tool of this server that this configuration or mode does not offer.
    pub fn tool_off(name: &str, why: &str) -> Self {
        Self {
            code: ErrorCode::UnknownTool,
            refusal: None,
            field: None,
            message: format!(
                "tool `{name}` is not offered here: {why} (`runbook-mcp tools --all` lists every \
                 tool and what it lacks)"
            ),
        }
    }

    pub fn unknown_tool(name: &str) -> Self {
        Self {
            code: ErrorCode::UnknownTool,
            refusal: None,
            field: None,
            message: format!(
                "unknown tool `{name}`; list the tools to see what this server offers"
            ),
        }
    }
}

impl fmt::Display for ToolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.code, &self.field) {
            (ErrorCode::InvalidArgument, Some(field)) => write!(
                f,
                "invalid argument `{field}`: {}. Nothing was run; fix the argument and call again.",
                self.message
            ),
            (ErrorCode::InvalidArgument, None) => write!(
                f,
                "invalid arguments: {}. Nothing was run; fix the arguments and call again.",
                self.message
            ),
            (ErrorCode::Unavailable, _) => write!(f, "unavailable: {}", self.message),
            (ErrorCode::Refused, _) => write!(
                f,
                "refused ({}): {} Nothing was changed. Do not retry blindly: a repeated call \
                 runs only once a human has approved this exact plan.",
                self.refusal.map_or("denied", Refusal::code),
                self.message
            ),
            _ => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for ToolError {}
