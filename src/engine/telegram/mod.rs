//! Approval from a phone (DESIGN §11). A pending record whose policy counts `telegram` is sent
//! to the configured chats with Approve / Deny buttons whose `callback_data` is the verb and
//! the opaque record id — never the plan. One server per bot token long-polls `getUpdates`
//! (a lock in the state directory decides which; the rest see decisions in the shared approval
//! store), and a press decides the record server-side only when it comes from an allowlisted
//! Telegram user, on the very message sent for that record, while the record still holds the
//! digest that message showed. The bot token lives in the URL path: no URL is ever logged or
//! put in an error.

mod poll;
mod press;

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::approval::ApprovalRecord;
use crate::config::{ApprovalTelegram, Config};
use crate::exec::{ExecError, HttpClient, HttpRequest};

pub use poll::ensure_polling;

/// The Bot API, for one token.
#[derive(Clone)]
pub struct Bot {
    base: String,
    token: String,
    http: HttpClient,
    secrets: crate::config::Secrets,
}

/// Why a Bot API call failed (never holding the URL or the token).
#[derive(Debug)]
pub enum BotError {
    /// HTTP 409: another getUpdates poller, or a webhook is set.
    Conflict(String),
    Failed(String),
}

impl std::fmt::Display for BotError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BotError::Conflict(s) => write!(f, "conflict: {s}"),
            BotError::Failed(s) => write!(f, "{s}"),
        }
    }
}

impl Bot {
    pub fn new(config: &Config, t: &ApprovalTelegram, http: HttpClient) -> Result<Self, String> {
        Ok(Self {
            base: t.api_base_url.clone(),
            token: config.secrets.get(&t.bot_token_secret)?.to_string(),
            http,
            secrets: config.secrets.clone(),
        })
    }

    /// A stable name for the token that is not the token (the poller lock's name).
    pub fn fingerprint(&self) -> String {
        super::send::once_key(&["telegram-bot", &self.token])
    }

    /// `POST {base}/bot{token}/{method}` with a JSON body; the `result` of an `ok` answer.
    pub async fn call(
        &self,
        method: &str,
        body: Value,
        timeout: Duration,
    ) -> Result<Value, BotError> {
        let mut req = HttpRequest::get(
            format!(
                "{}/bot{}/{method}",
                self.base,
                crate::config::secrets::encode(&self.token)
            ),
            timeout,
        );
        req.method = reqwest::Method::POST;
        req.body = Some(serde_json::to_vec(&body).map_err(|e| BotError::Failed(e.to_string()))?);
        let r = self.http.send(&req).await.map_err(|e| {
            BotError::Failed(self.secrets.mask(&match e {
                ExecError::TimedOut(_) => format!("{method}: no answer within {timeout:?}"),
                e => format!("{method}: {e}"),
            }))
        })?;
        let v: Value = serde_json::from_str(&r.body).unwrap_or(Value::Null);
        if r.status == 200 && v["ok"] == true {
            return Ok(v["result"].clone());
        }
        let said = self.secrets.mask(&format!(
            "{method}: HTTP {}: {}",
            r.status,
            v["description"].as_str().unwrap_or("no description")
        ));
        if r.status == 409 {
            Err(BotError::Conflict(said))
        } else {
            Err(BotError::Failed(said))
        }
    }
}

/// What the server keeps about the messages it sent for one record (beside the record).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Sent {
    /// The digest the messages showed: a press counts only while the record still has it.
    pub digest: String,
    pub text: String,
    /// `(chat id, message id)` of each message with buttons.
    pub messages: Vec<(i64, i64)>,
    /// Approvers of a destructive plan asked to reply with the target.
    #[serde(default)]
    pub awaiting: Vec<Awaiting>,
}

/// A pressed Approve on a destructive plan, waiting for the typed target.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Awaiting {
    pub user: i64,
    pub chat: i64,
    /// The bot's "reply with the target" message.
    pub prompt: i64,
}

fn dir(state_dir: &Path) -> PathBuf {
    state_dir.join("telegram")
}

fn sent_path(state_dir: &Path, id: &str) -> Option<PathBuf> {
    super::approval::valid_id(id).then(|| dir(state_dir).join(format!("{id}.json")))
}

pub(crate) fn load(state_dir: &Path, id: &str) -> Option<Sent> {
    let text = std::fs::read_to_string(sent_path(state_dir, id)?).ok()?;
    serde_json::from_str(&text).ok()
}

pub(crate) fn save(state_dir: &Path, id: &str, s: &Sent) -> std::io::Result<()> {
    let Some(path) = sent_path(state_dir, id) else {
        return Ok(());
    };
    std::fs::create_dir_all(dir(state_dir))?;
    let bytes = serde_json::to_vec(s).map_err(std::io::Error::other)?;
    crate::audit::store::replace_private(&path, &bytes)
}

/// Telegram's limit on a message.
const MAX_TEXT: usize = 4000;

/// Sends a new pending record to every configured chat, with its buttons; keeps what was sent.
/// A chat that cannot be reached costs a log line: the other channels still decide.
pub async fn announce(config: &Config, http: &HttpClient, r: &ApprovalRecord, prompt: &str) {
    let Some(t) = &config.approval.telegram else {
        return;
    };
    if !r.counts("telegram") {
        return;
    }
    let bot = match Bot::new(config, t, http.clone()) {
        Ok(b) => b,
        Err(e) => {
            tracing::warn!("telegram approvals: {e}");
            return;
        }
    };
    let mut text = format!("{prompt}Plan digest: {}\n", r.digest);
    if r.out_of_band_only {
        text.push_str(&format!(
            "Destructive: after Approve, reply with the target ({}) to approve.\n",
            crate::screen::escape(&r.confirm_text)
        ));
    }
    if r.approvals_required > 1 {
        text.push_str(&format!(
            "Needs {} different approvers.\n",
            r.approvals_required
        ));
    }
    let text = crate::digest::clip(&text, MAX_TEXT);
    let buttons = json!({"inline_keyboard": [[
        {"text": "Approve", "callback_data": format!("y:{}", r.id)},
        {"text": "Deny", "callback_data": format!("n:{}", r.id)},
    ]]});
    let mut sent = Sent {
        digest: r.digest.clone(),
        text: text.clone(),
        ..Sent::default()
    };
    for chat in &t.chat_ids {
        let body = json!({"chat_id": chat, "text": text, "reply_markup": buttons});
        match bot
            .call("sendMessage", body, config.server.http_timeout)
            .await
        {
            Ok(m) => {
                if let Some(id) = m["message_id"].as_i64() {
                    sent.messages.push((*chat, id));
                }
            }
            Err(e) => tracing::warn!(id = %r.id, "telegram approvals: chat {chat}: {e}"),
        }
    }
    if let Err(e) = save(&config.server.state_dir, &r.id, &sent) {
        tracing::warn!(id = %r.id, "telegram approvals: keeping the sent messages: {e}");
    }
}
