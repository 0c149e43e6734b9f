//! Slack: `notify_slack` (a thread per incident in the configured channel) and
//! `create_incident_channel` (`conversations.create`, then the first message).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{already, draft, incident, summary, text};
use crate::config::Slack;
use crate::engine::runner::RunOutcome;
use crate::engine::send::{Destination, Keep, Message, once_key, slack_post};
use crate::engine::{Action, Common, Ctx, Draft, Effect, Facts, ToolError, ToolMeta, Toolset};

fn config(ctx: &Ctx) -> Result<&Slack, ToolError> {
    ctx.config
        .notify
        .slack
        .as_ref()
        .ok_or_else(|| ToolError::tool_off("notify_slack", "no [notify.slack]"))
}

pub struct NotifySlack;

/// Parameters of `notify_slack` (besides `reason`, `dry_run`).
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SlackParams {
    /// The message, plain text (line feeds allowed), at most 3000 characters; Slack markup
    /// characters are shown as typed.
    pub text: String,
    /// `[notify.slack] channel` (default) or the incident's own channel from
    /// create_incident_channel; no other channel.
    #[serde(default)]
    pub channel: Option<String>,
    /// The incident (default: the session's). Its messages form one thread per channel.
    #[serde(default)]
    pub incident: Option<String>,
}

impl Action for NotifySlack {
    const META: ToolMeta = ToolMeta {
        name: "notify_slack",
        title: "Post to Slack",
        description: "Posts a plain-text message to the configured Slack channel (or the \
            incident's own channel), tagged with the incident and its severity; an incident's \
            messages form one thread. Use it to tell people what is happening and what was \
            done. A repeat of a delivered message is answered from this server's record, not \
            sent again. Returns the delivery (Slack ts) or why Slack refused it.",
        effect: Effect::Notify,
        toolset: Toolset::Notify,
    };
    const HOSTS: bool = false;
    const INCIDENT: bool = true;
    type Params = SlackParams;

    fn plan(ctx: &Ctx, _c: &Common, p: &SlackParams, _f: &Facts) -> Result<Draft, ToolError> {
        let cfg = config(ctx)?;
        text("text", &p.text, 3000)?;
        let i = incident(ctx, &p.incident)?;
        let own = i
            .as_ref()
            .and_then(|i| i.links.get("slack_channel"))
            .map(|n| format!("#{n}"));
        let channel = match &p.channel {
            None => cfg.channel.clone(),
            Some(c) if *c == cfg.channel || Some(c) == own.as_ref() => c.clone(),
            Some(c) => {
                return Err(ToolError::invalid(
                    "channel",
                    format!(
                        "`{}` is neither {} nor the incident's channel{}",
                        c.escape_debug(),
                        cfg.channel,
                        own.map(|o| format!(" ({o})")).unwrap_or_default()
                    ),
                ));
            }
        };
        let m = slack_post(cfg, i.as_ref(), &channel, &p.text);
        let where_ = match (&i, m.body.get("thread_ts")) {
            (Some(i), Some(_)) => format!("in {}'s thread", i.id),
            (Some(i), None) => format!("starting {}'s thread", i.id),
            (None, _) => "not tied to an incident".into(),
        };
        Ok(draft(
            vec![m],
            format!("posts to Slack {channel}, {where_}"),
        ))
    }

    fn preflight(
        ctx: &Ctx,
        c: &Common,
        p: &SlackParams,
        f: &Facts,
    ) -> Result<Vec<String>, ToolError> {
        Ok(already(ctx, &Self::plan(ctx, c, p, f)?))
    }

    fn summary(_c: &Common, _p: &SlackParams, out: &RunOutcome) -> String {
        summary("notify_slack", out)
    }
}

pub struct CreateIncidentChannel;

/// Parameters of `create_incident_channel` (besides `reason`, `dry_run`).
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ChannelParams {
    /// The incident (default: the session's).
    #[serde(default)]
    pub incident: Option<String>,
    /// The channel name: lowercase letters, digits, `-`, `_`, at most 80 (default: the
    /// incident id, lowercased: `inc-20261201-ab12`).
    #[serde(default)]
    pub name: Option<String>,
    /// A private channel (default public).
    #[serde(default)]
    pub is_private: bool,
    /// Added to the first message (which names the incident, severity, commander and
    /// deadline).
    #[serde(default)]
    pub message: Option<String>,
}

impl Action for CreateIncidentChannel {
    const META: ToolMeta = ToolMeta {
        name: "create_incident_channel",
        title: "Create the incident's Slack channel",
        description: "Creates a Slack channel for the incident (`conversations.create`, \
            default name: the incident id in lowercase) and posts its first message: incident, severity, \
            commander, deadline. Use it for a P0/P1 that needs a war room. notify_slack can \
            then post there. Returns the channel and the first message's delivery.",
        effect: Effect::Notify,
        toolset: Toolset::Notify,
    };
    const HOSTS: bool = false;
    const INCIDENT: bool = true;
    type Params = ChannelParams;

    fn plan(ctx: &Ctx, _c: &Common, p: &ChannelParams, _f: &Facts) -> Result<Draft, ToolError> {
        let cfg = config(ctx)?;
        let Some(i) = incident(ctx, &p.incident)? else {
            return Err(ToolError::invalid(
                "incident",
                "a channel is an incident's: pass `incident`, or open_incident / join_incident",
            ));
        };
        let name = p.name.clone().unwrap_or_else(|| i.id.to_lowercase());
        if !crate::config::channel_name_ok(&name) {
            return Err(ToolError::invalid(
                "name",
                format!(
                    "`{}`: lowercase letters, digits, `-`, `_`, at most 80",
                    name.escape_debug()
                ),
            ));
        }
        if let Some(m) = &p.message {
            text("message", m, 2000)?;
        }
        let create = Message {
            destination: Destination::Slack,
            to: "conversations".into(),
            method: "POST".into(),
            url: format!("{}/api/conversations.create", cfg.api_base_url),
            headers: vec![(
                "Authorization".into(),
                format!("Bearer {{secret:{}}}", cfg.token_secret),
            )],
            body: json!({"name": name, "is_private": p.is_private}),
            fill: Default::default(),
            once: Some(once_key(&["slack-channel", &i.id, &name])),
            keep: Some(Keep {
                incident: i.id.clone(),
                link: "slack_channel".into(),
                from: "/channel/name".into(),
            }),
        };
        let first = format!(
            "Incident {}: {} ({:?}, {}). Commander: {}. Respond by {}.{}",
            i.id,
            i.title,
            i.severity,
            i.severity.description(),
            i.commander,
            i.deadline,
            p.message
                .as_ref()
                .map(|m| format!("\n{m}"))
                .unwrap_or_default()
        );
        let mut hello = slack_post(cfg, None, &format!("#{name}"), &first);
        hello.once = Some(once_key(&["slack", &i.id, &format!("#{name}"), &first]));
        Ok(draft(
            vec![create, hello],
            format!(
                "creates the {} Slack channel #{name} for {}, then posts its first message",
                if p.is_private { "private" } else { "public" },
                i.id
            ),
        ))
    }

    fn preflight(
        ctx: &Ctx,
        c: &Common,
        p: &ChannelParams,
        f: &Facts,
    ) -> Result<Vec<String>, ToolError> {
        Ok(already(ctx, &Self::plan(ctx, c, p, f)?))
    }

    fn summary(_c: &Common, _p: &ChannelParams, out: &RunOutcome) -> String {
        summary("create_incident_channel", out)
    }
}
