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
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolError {
    pub code: ErrorCode,
    /// The offending argument, as a path (`hosts[1]`).
    pub field: Option<String>,
    pub message: String,
}

impl ToolError {
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            code: ErrorCode::InvalidArgument,
            field: Some(field.into()),
            message: message.into(),
        }
    }

    pub fn unavailable(message: impl Into<String>) -> Self {
        Self {
            code: ErrorCode::Unavailable,
            field: None,
            message: message.into(),
        }
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self {
            code: ErrorCode::Internal,
            field: None,
            message: message.into(),
        }
    }

    pub fn unknown_tool(name: &str) -> Self {
        Self {
            code: ErrorCode::UnknownTool,
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
            _ => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for ToolError {}
