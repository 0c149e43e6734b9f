//! `send_telegram_message`: one plain-text message to the configured chat. The bot token is in
//! the Bot API's URL path: the plan shows `{secret:NAME}` there and the executor fills it.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{already, draft, incident, summary, tag, text};
use crate::engine::runner::RunOutcome;
use crate::engine::send::{Destination, Message, once_key};
use crate::engine::{Action, Common, Ctx, Draft, Effect, Facts, ToolError, ToolMeta, Toolset};

pub struct SendTelegramMessage;

/// Parameters of `send_telegram_message` (besides `reason`, `dry_run`).
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// The message, plain text (line feeds allowed; no formatting is parsed), at most 4000
    /// characters.
    pub text: String,
    /// The incident (default: the session's).
    #[serde(default)]
    pub incident: Option<String>,
}

impl Action for SendTelegramMessage {
    const META: ToolMeta = ToolMeta {
        name: "send_telegram_message",
        title: "Send a Telegram message",
        description: "Sends a plain-text message to the configured Telegram chat, tagged with \
            the incident and its severity. Use it where the team follows incidents on \
            Telegram. A repeat of a delivered message is answered from this server's record, \
            not sent again. Returns the delivery (message id) or Telegram's refusal.",
        effect: Effect::Notify,
        toolset: Toolset::Notify,
    };
    const HOSTS: bool = false;
    const INCIDENT: bool = true;
    type Params = Params;

    fn plan(ctx: &Ctx, _c: &Common, p: &Params, _f: &Facts) -> Result<Draft, ToolError> {
        let cfg =
            ctx.config.notify.telegram.as_ref().ok_or_else(|| {
                ToolError::tool_off("send_telegram_message", "no [notify.telegram]")
            })?;
        text("text", &p.text, 4000)?;
        let i = incident(ctx, &p.incident)?;
        let chat = cfg.chat_id.to_string();
        let id = i.as_ref().map_or("-", |i| i.id.as_str());
        let m = Message {
            destination: Destination::Telegram,
            to: chat.clone(),
            method: "POST".into(),
            url: format!(
                "{}/bot{{secret:{}}}/sendMessage",
                cfg.api_base_url, cfg.bot_token_secret
            ),
            headers: Vec::new(),
            // No parse_mode: nothing in the text is read as formatting.
            body: json!({
                "chat_id": cfg.chat_id,
                "text": format!("{}{}", tag(i.as_ref()), p.text),
                "link_preview_options": {"is_disabled": true},
            }),
            fill: Default::default(),
            once: Some(once_key(&["telegram", id, &chat, &p.text])),
            keep: None,
        };
        Ok(draft(vec![m], format!("sends to Telegram chat {chat}")))
    }

    fn preflight(ctx: &Ctx, c: &Common, p: &Params, f: &Facts) -> Result<Vec<String>, ToolError> {
        Ok(already(ctx, &Self::plan(ctx, c, p, f)?))
    }

    fn summary(_c: &Common, _p: &Params, out: &RunOutcome) -> String {
        summary("send_telegram_message", out)
    }
}
