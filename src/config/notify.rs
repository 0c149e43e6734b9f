//! `[notify.*]`: where the notification tools send. Base URLs are configuration (tests point
//! them at a local receiver); every credential is a named secret, so a plan shows
//! `{secret:NAME}` and never the value.

use schemars::JsonSchema;
use serde::Deserialize;

use super::{ConfigError, Secrets};

/// The notification destinations; a tool is offered only when its table is present.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawNotify {
    pub slack: Option<RawSlack>,
    pub pagerduty: Option<RawPagerDuty>,
    pub statuspage: Option<RawStatuspage>,
    pub telegram: Option<RawTelegram>,
}

/// Slack Web API (`notify_slack`, `create_incident_channel`).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawSlack {
    /// `https://slack.com`; messages go to `{api_base_url}/api/chat.postMessage`.
    pub api_base_url: String,
    /// Secret holding the bot token (`xoxb-…`, scopes `chat:write`, `channels:manage`).
    pub token_secret: String,
    /// Default channel, `#incidents` or a channel id (`C0123…`).
    pub channel: String,
    /// Post every approved action of an incident to its thread (default false).
    #[serde(default)]
    pub mirror_actions: bool,
}

/// PagerDuty Events API v2 (`page_oncall`).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawPagerDuty {
    /// `https://events.pagerduty.com`; events go to `{events_url}/v2/enqueue`.
    pub events_url: String,
    /// Secret holding the 32-character integration (routing) key.
    pub routing_key_secret: String,
}

/// Atlassian Statuspage (`update_status_page`).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawStatuspage {
    /// `https://api.statuspage.io`.
    pub api_base_url: String,
    /// The page's id (`{api_base_url}/v1/pages/{page_id}/incidents`).
    pub page_id: String,
    /// Secret holding the API key (sent as `Authorization: OAuth KEY`).
    pub api_key_secret: String,
}

/// Telegram Bot API (`send_telegram_message`).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawTelegram {
    /// `https://api.telegram.org`.
    pub api_base_url: String,
    /// Secret holding the bot token (`123456:ABC…`; it travels in the URL path, never logged).
    pub bot_token_secret: String,
    /// The chat messages go to (a group's id is negative).
    pub chat_id: i64,
}

#[derive(Debug, Clone, Default)]
pub struct Notify {
    pub slack: Option<Slack>,
    pub pagerduty: Option<PagerDuty>,
    pub statuspage: Option<Statuspage>,
    pub telegram: Option<Telegram>,
}

#[derive(Debug, Clone)]
pub struct Slack {
    pub api_base_url: String,
    pub token_secret: String,
    pub channel: String,
    pub mirror_actions: bool,
}

#[derive(Debug, Clone)]
pub struct PagerDuty {
    pub events_url: String,
    pub routing_key_secret: String,
}

#[derive(Debug, Clone)]
pub struct Statuspage {
    pub api_base_url: String,
    pub page_id: String,
    pub api_key_secret: String,
}

#[derive(Debug, Clone)]
pub struct Telegram {
    pub api_base_url: String,
    pub bot_token_secret: String,
    pub chat_id: i64,
}

pub(super) fn resolve(
    raw: RawNotify,
    file: &str,
    secrets: &Secrets,
) -> Result<Notify, ConfigError> {
    let err = |field: &str, message: String| ConfigError {
        file: file.into(),
        field: field.into(),
        message,
    };
    let url = |field: &str, v: &str| base_url(v).map_err(|m| err(field, m));
    let secret = |field: &str, name: &str| -> Result<String, ConfigError> {
        if secrets.contains(name) {
            Ok(name.to_string())
        } else {
            Err(err(
                field,
                format!("secret `{name}` is not defined under [secrets]"),
            ))
        }
    };
    let slack = match raw.slack {
        None => None,
        Some(s) => Some(Slack {
            api_base_url: url("notify.slack.api_base_url", &s.api_base_url)?,
            token_secret: secret("notify.slack.token_secret", &s.token_secret)?,
            channel: slack_channel(&s.channel).map_err(|m| err("notify.slack.channel", m))?,
            mirror_actions: s.mirror_actions,
        }),
    };
    let pagerduty = match raw.pagerduty {
        None => None,
        Some(p) => Some(PagerDuty {
            events_url: url("notify.pagerduty.events_url", &p.events_url)?,
            routing_key_secret: secret(
                "notify.pagerduty.routing_key_secret",
                &p.routing_key_secret,
            )?,
        }),
    };
    let statuspage = match raw.statuspage {
        None => None,
        Some(s) => {
            super::check_token(&s.page_id).map_err(|m| err("notify.statuspage.page_id", m))?;
            Some(Statuspage {
                api_base_url: url("notify.statuspage.api_base_url", &s.api_base_url)?,
                page_id: s.page_id,
                api_key_secret: secret("notify.statuspage.api_key_secret", &s.api_key_secret)?,
            })
        }
    };
    let telegram = match raw.telegram {
        None => None,
        Some(t) => Some(Telegram {
            api_base_url: url("notify.telegram.api_base_url", &t.api_base_url)?,
            bot_token_secret: secret("notify.telegram.bot_token_secret", &t.bot_token_secret)?,
            chat_id: t.chat_id,
        }),
    };
    Ok(Notify {
        slack,
        pagerduty,
        statuspage,
        telegram,
    })
}

/// An http(s) origin with an optional path, without a trailing `/`, a query or a fragment: the
/// tools append the API's path to it.
pub fn base_url(v: &str) -> Result<String, String> {
    let rest = v
        .strip_prefix("https://")
        .or_else(|| v.strip_prefix("http://"))
        .ok_or_else(|| format!("`{}` is not an http(s) URL", v.escape_debug()))?;
    let host = rest.split('/').next().unwrap_or_default();
    if host.is_empty()
        || rest.contains(['?', '#', ' ', '@'])
        || !rest.chars().all(|c| c.is_ascii_graphic())
    {
        return Err(format!(
            "`{}` must be scheme://host[:port][/path], no user, query or fragment",
            v.escape_debug()
        ));
    }
    Ok(v.trim_end_matches('/').to_string())
}

/// `#name` (lowercase letters, digits, `-`, `_`, at most 80) or a channel id (`C0123ABC`).
pub fn slack_channel(v: &str) -> Result<String, String> {
    let ok = match v.strip_prefix('#') {
        Some(name) => channel_name_ok(name),
        None => {
            (2..=24).contains(&v.len())
                && v.starts_with(['C', 'G'])
                && v.chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
        }
    };
    if ok {
        Ok(v.to_string())
    } else {
        Err(format!(
            "`{}` is neither `#name` (lowercase letters, digits, `-`, `_`, at most 80) nor a channel id",
            v.escape_debug()
        ))
    }
}

/// Slack's rule for channel names.
pub fn channel_name_ok(name: &str) -> bool {
    (1..=80).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_urls_and_channels() {
        assert_eq!(base_url("https://slack.com/").unwrap(), "https://slack.com");
        assert_eq!(
            base_url("http://127.0.0.1:8099").unwrap(),
            "http://127.0.0.1:8099"
        );
        for bad in [
            "slack.com",
            "https://",
            "https://a?b",
            "https://u@h",
            "ftp://x",
        ] {
            assert!(base_url(bad).is_err(), "{bad}");
        }
        assert!(slack_channel("#incidents").is_ok());
        assert!(slack_channel("C0INCIDENTS").is_ok());
        for bad in ["#Incidents", "#", "incidents", "#a b", "c123"] {
            assert!(slack_channel(bad).is_err(), "{bad}");
        }
    }
}
