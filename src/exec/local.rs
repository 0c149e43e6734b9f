//! The local executor: argv straight to `execve`, never through a shell.

use std::process::Stdio;
use std::time::Instant;

use super::{Cmd, CmdOutput, ExecError, Limits, read_capped, read_stdout, wrap_argv, write_input};

pub struct LocalExec {
    sudo: bool,
}

impl LocalExec {
    pub fn new(sudo: bool) -> Self {
        Self { sudo }
    }

    pub async fn run(&self, cmd: &Cmd, limits: Limits) -> Result<CmdOutput, ExecError> {
        // No remote `timeout` here: the child is ours and is killed when the deadline passes.
        let argv = wrap_argv(cmd, self.sudo, None);
        let (prog, args) = argv
            .split_first()
            .ok_or_else(|| ExecError::Failed("empty command".into()))?;
        let started = Instant::now();
        let mut command = tokio::process::Command::new(prog);
        // Only what a command needs: never the server's own environment, which may hold the
        // secrets this server was given (`{ env = "…" }`).
        command.env_clear();
        for keep in ["PATH", "HOME", "LANG", "TZ", "USER", "LOGNAME"] {
            if let Some(v) = std::env::var_os(keep) {
                command.env(keep, v);
            }
        }
        for name in &cmd.env.remove {
            command.env_remove(name);
        }
        // Values (possibly secrets) go to the child only; `cmd.env`'s Debug shows names.
        command.envs(cmd.env.set.iter().map(|(k, v)| (k, v)));
        let mut child = command
            .args(args)
            .stdin(if cmd.input.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| ExecError::Failed(format!("{}: {e}", cmd.argv.join(" "))))?;
        let stdout = child.stdout.take();
        let stderr = child.stderr.take();
        let stdin = child.stdin.take();
        let work = async {
            let input = write_input(stdin, cmd.input.as_deref());
            let out = async {
                match stdout {
                    Some(s) => read_stdout(s, limits.output_cap, cmd.sink.as_ref()).await,
                    None => Ok((Vec::new(), false)),
                }
            };
            let err = async {
                match stderr {
                    Some(s) => read_capped(s, 64 * 1024).await,
                    None => Ok((Vec::new(), false)),
                }
            };
            let (_, (out, truncated), (err, _)) = tokio::try_join!(input, out, err)?;
            let status = child.wait().await?;
            Ok::<_, std::io::Error>((status, out, err, truncated))
        };
        match tokio::time::timeout(limits.timeout, work).await {
            Err(_) => Err(ExecError::TimedOut(limits.timeout)),
            Ok(Err(e)) => Err(ExecError::Failed(e.to_string())),
            Ok(Ok((status, out, err, truncated))) => Ok(CmdOutput {
                exit_code: status.code(),
                stdout: String::from_utf8_lossy(&out).into_owned(),
                stderr: String::from_utf8_lossy(&err).into_owned(),
                truncated,
                elapsed: started.elapsed(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn env_reaches_the_child_only_and_debug_shows_names_not_values() {
        let cmd = Cmd::new(["printenv", "RUNBOOK_TEST_SECRET", "HOME"])
            .env("RUNBOOK_TEST_SECRET", "s3cr3t-value")
            .env_remove("HOME");
        let limits = Limits {
            timeout: Duration::from_secs(5),
            output_cap: 4096,
        };
        let out = LocalExec::new(false).run(&cmd, limits).await.unwrap();
        // printenv exits 1 when one of the names is unset: HOME was removed.
        assert_eq!(out.stdout, "s3cr3t-value\n");
        assert_eq!(out.exit_code, Some(1));
        let shown = format!("{cmd:?}");
        assert!(shown.contains("RUNBOOK_TEST_SECRET"), "{shown}");
        assert!(!shown.contains("s3cr3t-value"), "{shown}");
        assert!(!cmd.argv.iter().any(|a| a.contains("s3cr3t")));
    }

    #[tokio::test]
    async fn a_child_never_inherits_the_servers_environment() {
        // SAFETY: a test-only variable no other test reads; set before the child is spawned.
        unsafe { std::env::set_var("RUNBOOK_SERVER_ONLY_TOKEN", "from-the-server") };
        let limits = Limits {
            timeout: Duration::from_secs(5),
            output_cap: 4096,
        };
        let out = LocalExec::new(false)
            .run(&Cmd::new(["printenv", "RUNBOOK_SERVER_ONLY_TOKEN"]), limits)
            .await
            .unwrap();
        assert_eq!(
            out.exit_code,
            Some(1),
            "not set in the child: {}",
            out.stdout
        );
        let path = LocalExec::new(false)
            .run(&Cmd::new(["printenv", "PATH"]), limits)
            .await
            .unwrap();
        assert!(path.success(), "PATH is kept");
    }
}
