//! `update_status_page`: the incident's public face on Statuspage. The first call creates a
//! Statuspage incident (POST) and the incident record keeps its id; later calls PATCH it with
//! a new status and update text.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{already, draft, incident, summary, text};
use crate::engine::plan::Change;
use crate::engine::runner::RunOutcome;
use crate::engine::send::{Destination, Keep, Message, once_key};
use crate::engine::{Action, Common, Ctx, Draft, Effect, Facts, ToolError, ToolMeta, Toolset};

/// Statuspage's statuses of a realtime incident.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum PageStatus {
    Investigating,
    Identified,
    Monitoring,
    Resolved,
}

pub struct UpdateStatusPage;

/// Parameters of `update_status_page` (besides `reason`, `dry_run`).
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Params {
    pub status: PageStatus,
    /// The update customers read, plain text, at most 5000 characters.
    pub body: String,
    /// The public title (default: the incident's title); only when creating.
    #[serde(default)]
    pub name: Option<String>,
    /// The incident (default: the session's); its Statuspage incident is created once.
    #[serde(default)]
    pub incident: Option<String>,
    /// Email/SMS subscribers (default true).
    #[serde(default = "yes")]
    pub deliver_notifications: bool,
}

fn yes() -> bool {
    true
}

impl Action for UpdateStatusPage {
    const META: ToolMeta = ToolMeta {
        name: "update_status_page",
        title: "Update the public status page",
        description: "Posts a customer-facing update on Statuspage: the first call for an \
            incident creates its Statuspage incident, later calls update it (status \
            investigating → identified → monitoring → resolved, with the text customers \
            read). Use it when users are affected. Returns the Statuspage incident id.",
        effect: Effect::Notify,
        toolset: Toolset::Notify,
    };
    const HOSTS: bool = false;
    const INCIDENT: bool = true;
    type Params = Params;

    fn plan(ctx: &Ctx, _c: &Common, p: &Params, _f: &Facts) -> Result<Draft, ToolError> {
        let cfg =
            ctx.config.notify.statuspage.as_ref().ok_or_else(|| {
                ToolError::tool_off("update_status_page", "no [notify.statuspage]")
            })?;
        text("body", &p.body, 5000)?;
        let i = incident(ctx, &p.incident)?;
        let existing = i.as_ref().and_then(|i| i.links.get("statuspage")).cloned();
        let status = serde_json::to_value(p.status).unwrap_or_default();
        let mut inner = json!({
            "status": status,
            "body": p.body,
            "deliver_notifications": p.deliver_notifications,
        });
        let base = format!("{}/v1/pages/{}/incidents", cfg.api_base_url, cfg.page_id);
        let (method, url) = match &existing {
            Some(id) => {
                if p.name.is_some() {
                    return Err(ToolError::invalid(
                        "name",
                        format!("the Statuspage incident {id} exists; its name stays"),
                    ));
                }
                ("PATCH", format!("{base}/{id}"))
            }
            None => {
                let name = match (&p.name, &i) {
                    (Some(n), _) => n.clone(),
                    (None, Some(i)) => i.title.clone(),
                    (None, None) => {
                        return Err(ToolError::invalid(
                            "name",
                            "a new page incident needs a name",
                        ));
                    }
                };
                text("name", &name, 200)?;
                inner["name"] = name.into();
                ("POST", base)
            }
        };
        let id = i.as_ref().map_or("-", |i| i.id.as_str());
        let shown = serde_json::to_string(&status).unwrap_or_default();
        let m = Message {
            destination: Destination::Statuspage,
            to: cfg.page_id.clone(),
            method: method.into(),
            url,
            headers: vec![(
                "Authorization".into(),
                format!("OAuth {{secret:{}}}", cfg.api_key_secret),
            )],
            body: json!({ "incident": inner }),
            fill: Default::default(),
            once: Some(once_key(&["statuspage", id, &cfg.page_id, &shown, &p.body])),
            keep: match (&i, &existing) {
                (Some(i), None) => Some(Keep {
                    incident: i.id.clone(),
                    link: "statuspage".into(),
                    from: "/id".into(),
                }),
                _ => None,
            },
        };
        let what = existing
            .as_ref()
            .map(|e| format!("Statuspage incident {e}"))
            .unwrap_or_else(|| "a new Statuspage incident".into());
        let mut d = draft(vec![m], format!("{method} {what} on page {}", cfg.page_id));
        d.changes.push(Change {
            what: format!("{what} status"),
            before: if existing.is_some() {
                "as it is"
            } else {
                "none"
            }
            .into(),
            after: shown.trim_matches('"').to_string(),
        });
        Ok(d)
    }

    fn preflight(ctx: &Ctx, c: &Common, p: &Params, f: &Facts) -> Result<Vec<String>, ToolError> {
        Ok(already(ctx, &Self::plan(ctx, c, p, f)?))
    }

    fn summary(_c: &Common, _p: &Params, out: &RunOutcome) -> String {
        summary("update_status_page", out)
    }
}
