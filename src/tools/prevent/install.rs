//! `install_alert_rules`: the generated rules written to `[prometheus] rules_file` on the rules
//! host: back up the file under this request's name → (compensate: put it back and reload) →
//! write → `promtool check rules` → reload. A check or reload that fails leaves Prometheus
//! with the file it had.

use crate::engine::plan::{At, Change, Command, Stage, Step};
use crate::engine::runner::RunOutcome;
use crate::engine::{
    Action, Common, Ctx, Draft, Effect, Facts, Target, ToolError, ToolMeta, Toolset,
};

use super::rules::{self, Thresholds};

pub struct InstallAlertRules;

impl Action for InstallAlertRules {
    const META: ToolMeta = ToolMeta {
        name: "install_alert_rules",
        title: "Install alert rules",
        description: "Installs the rules generate_alert_rules writes (same thresholds) as the \
            configured Prometheus rules file: backs the file up, writes it, runs `promtool check \
            rules`, reloads Prometheus, and puts the old file back if the check or the reload \
            fails. Needs approval of the exact plan (the file's bytes are in it). Returns each \
            step's outcome.",
        effect: Effect::Change,
        toolset: Toolset::Prevent,
    };
    const HOSTS: bool = false;
    type Params = Thresholds;

    fn plan(ctx: &Ctx, _c: &Common, p: &Thresholds, _f: &Facts) -> Result<Draft, ToolError> {
        p.check().map_err(|(f, m)| ToolError::invalid(f, m))?;
        let target = ctx
            .config
            .prometheus
            .as_ref()
            .and_then(|p| p.rules.as_ref())
            .ok_or_else(|| ToolError::unavailable("no [prometheus] rules_file is configured"))?;
        let (at, sudo) = match &target.host {
            Some(name) => {
                let h = ctx
                    .config
                    .host(name)
                    .ok_or_else(|| ToolError::internal(format!("rules host {name} vanished")))?;
                (At::of(h), h.sudo)
            }
            None => (At::server(), false),
        };
        let rules = p.rules();
        let yaml = rules::yaml(&p.group, &rules);
        let file = target.file.as_str();
        let bak = format!("{file}.runbook-{{request_id}}.bak");
        let run =
            |argv: &[&str]| Step::run(&at, argv.iter().map(|a| a.to_string()).collect(), sudo);
        let reload = Step::run(&at, target.reload.clone(), sudo);
        let mut write = Command::new(&at, vec!["tee".into(), "--".into(), file.into()], sudo);
        write.stdin = Some(yaml);
        let steps = vec![
            // A first install has no file to back up: create an empty one (valid, no rules).
            run(&["touch", "--", file]),
            run(&["cp", "-p", "--", file, &bak]),
            Step::Compensate {
                steps: vec![run(&["cp", "-p", "--", &bak, file]), reload.clone()],
            },
            Step::Run(write),
            run(&["promtool", "check", "rules", "--", file]),
            reload,
        ];
        // The approver reads every rule as it will be written, not just a hash of the file.
        let changes = rules
            .iter()
            .map(|r| Change {
                what: format!("rule {} in {file} (group `{}`)", r.alert, p.group),
                before: "as the file has it now (backed up first)".into(),
                after: format!("{} for {} ({})", r.expr, r.for_, r.severity),
            })
            .collect();
        Ok(Draft {
            stages: vec![Stage {
                name: at.host.clone(),
                via: at.via.clone(),
                steps,
            }],
            changes,
            notes: vec![format!(
                "undo: copy {file}.runbook-<request id>.bak back over {file} and reload Prometheus"
            )],
            targets: vec![Target {
                host: at.host.clone(),
                service: Some("prometheus".into()),
            }],
            ..Draft::default()
        })
    }

    fn summary(_c: &Common, _p: &Thresholds, out: &RunOutcome) -> String {
        format!("install_alert_rules: {}", out.line())
    }
}
