//! `[approval.telegram]`: approvals from a phone (DESIGN §11) — a dedicated bot, the chats
//! pending plans go to, and the Telegram user ids whose presses count.

use schemars::JsonSchema;
use serde::Deserialize;

use super::{ConfigError, Secrets};

/// Approval by Telegram buttons.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawApprovalTelegram {
    /// `https://api.telegram.org` (tests point it at a local stand-in).
    pub api_base_url: String,
    /// Secret holding the token of a bot dedicated to approvals (not a bridge's bot: this
    /// server consumes its updates).
    pub bot_token_secret: String,
    /// Chats pending plans are sent to (a user's id for a private chat).
    pub chat_ids: Vec<i64>,
    /// Telegram user ids whose presses count; anyone else's press is ignored.
    pub approvers: Vec<i64>,
    /// Long-poll timeout of `getUpdates`, in seconds (default 25, 1..=50).
    pub poll_timeout_secs: Option<u64>,
}

#[derive(Debug, Clone)]
pub struct ApprovalTelegram {
    pub api_base_url: String,
    pub bot_token_secret: String,
    pub chat_ids: Vec<i64>,
    pub approvers: Vec<i64>,
    pub poll_timeout_secs: u64,
}

pub(super) fn resolve(
    raw: Option<RawApprovalTelegram>,
    file: &str,
    secrets: &Secrets,
) -> Result<Option<ApprovalTelegram>, ConfigError> {
    let Some(t) = raw else { return Ok(None) };
    let err = |field: &str, message: String| ConfigError {
        file: file.into(),
        field: format!("approval.telegram.{field}"),
        message,
    };
    let api_base_url =
        super::notify::base_url(&t.api_base_url).map_err(|m| err("api_base_url", m))?;
    if !secrets.contains(&t.bot_token_secret) {
        return Err(err(
            "bot_token_secret",
            format!(
                "secret `{}` is not defined under [secrets]",
                t.bot_token_secret
            ),
        ));
    }
    if t.chat_ids.is_empty() {
        return Err(err("chat_ids", "name the chats pending plans go to".into()));
    }
    if t.approvers.is_empty() || t.approvers.iter().any(|&u| u <= 0) {
        return Err(err(
            "approvers",
            "list the Telegram user ids (positive numbers) whose presses count".into(),
        ));
    }
    let poll_timeout_secs = match t.poll_timeout_secs.unwrap_or(25) {
        n @ 1..=50 => n,
        n => {
            return Err(err(
                "poll_timeout_secs",
                format!("{n} is out of range 1..=50"),
            ));
        }
    };
    Ok(Some(ApprovalTelegram {
        api_base_url,
        bot_token_secret: t.bot_token_secret,
        chat_ids: t.chat_ids,
        approvers: t.approvers,
        poll_timeout_secs,
    }))
}
