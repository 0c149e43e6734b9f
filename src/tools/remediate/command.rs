//! `run_command`: an ad-hoc argv on chosen hosts, for what the runbook did not foresee — so the
//! assistant never needs its own shell (outside the gate and the audit log) to look at a host.
//! A command matching the config's read-only allowlist (`[commands] read_only`) is a `read`
//! and runs at once; any other is a `change` and needs approval of the exact argv. Either way
//! it is a sealed plan: audited, blast-radius checked, one stage per host, and nothing is ever
//! interpreted by a shell (argv only; over ssh every word is quoted).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common;
use crate::engine::args::Text;
use crate::engine::plan::{At, Command, Step};
use crate::engine::runner::RunOutcome;
use crate::engine::{Action, Common, Ctx, Draft, Effect, Facts, ToolError, ToolMeta, Toolset};

pub struct RunCommand;

/// Parameters of `run_command` (besides `hosts`, `reason`, `dry_run`).
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// The command as argv words (no shell: pipes, globs and `$VAR` are plain text), e.g.
    /// `["journalctl", "-u", "nginx", "-n", "50", "--no-pager"]`. 1 to 32 words.
    #[schemars(length(min = 1, max = 32))]
    pub argv: Vec<Text>,
    /// Run it through `sudo -n` on hosts configured with `sudo` (never a read).
    #[serde(default)]
    pub sudo: bool,
}

fn argv(p: &Params) -> Result<Vec<String>, ToolError> {
    if p.argv.is_empty() || p.argv.len() > 32 {
        return Err(ToolError::invalid("argv", "give 1 to 32 words"));
    }
    let words: Vec<String> = p.argv.iter().map(|w| w.as_str().to_string()).collect();
    crate::config::check_token(&words[0])
        .or_else(|e| {
            // An absolute path is a program name too.
            let path = words[0].starts_with('/')
                && words[0][1..]
                    .split('/')
                    .all(|c| crate::config::check_token(c).is_ok());
            if path { Ok(()) } else { Err(e) }
        })
        .map_err(|e| ToolError::invalid("argv[0]", format!("the program: {e}")))?;
    Ok(words)
}

impl Action for RunCommand {
    const META: ToolMeta = ToolMeta {
        name: "run_command",
        title: "Run a command on hosts",
        description: "Runs one command (an argv, never a shell) on the named hosts and returns \
            what it printed, per host. Use for what no other tool covers — instead of your own \
            shell, so the gate and the audit log see it. Commands on the configured read-only \
            allowlist (e.g. `cat /proc/…`, `journalctl -u UNIT -n N --no-pager`, `ss -tlnp`) run \
            at once; any other command is a change and needs approval of the exact argv; try \
            `dry_run` to see which it is. Returns per host the exit code and output.",
        effect: Effect::Change,
        toolset: Toolset::Remediate,
    };
    /// Read when allowlisted: the one action whose call may be weaker than the tool.
    const EFFECT_PER_CALL: bool = true;
    type Params = Params;

    fn effect(ctx: &Ctx, p: &Params, _f: &Facts) -> Effect {
        match argv(p) {
            Ok(a) if !p.sudo && ctx.config.commands.is_read_only(&a) => Effect::Read,
            _ => Effect::Change,
        }
    }

    fn plan(ctx: &Ctx, c: &Common, p: &Params, _f: &Facts) -> Result<Draft, ToolError> {
        let words = argv(p)?;
        let mut stages = Vec::new();
        for (i, h) in c.hosts.iter().enumerate() {
            let host = ctx.config.host(h.as_str()).ok_or_else(|| {
                ToolError::invalid(format!("hosts[{i}]"), format!("unknown host `{h}`"))
            })?;
            let mut cmd = Command::new(&At::of(host), words.clone(), p.sudo && host.sudo);
            cmd.output = true;
            stages.push(common::stage(host, vec![Step::Run(cmd)]));
        }
        let read = !p.sudo && ctx.config.commands.is_read_only(&words);
        Ok(Draft {
            stages,
            notes: vec![if read {
                "on the read-only allowlist: runs without approval".into()
            } else {
                "not on the read-only allowlist: a change, approved as this exact argv".into()
            }],
            targets: c
                .hosts
                .iter()
                .map(|h| crate::engine::Target {
                    host: h.as_str().into(),
                    service: None,
                })
                .collect(),
            confirm_text: c.hosts_text(),
            ..Draft::default()
        })
    }

    fn summary(_c: &Common, _p: &Params, out: &RunOutcome) -> String {
        let mut s = out.line();
        for st in &out.stages {
            if let Some(o) = st.steps.iter().find_map(|x| x.output.as_deref()) {
                s.push_str(&format!("\n--- {} ---\n{o}", st.stage));
            }
        }
        s
    }
}
