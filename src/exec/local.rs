//! The local executor: argv straight to `execve`, never through a shell.

use std::process::Stdio;
use std::time::Instant;

use super::{Cmd, CmdOutput, ExecError, Limits, read_capped, wrap_argv};

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
        let mut child = tokio::process::Command::new(prog)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| ExecError::Failed(format!("{}: {e}", cmd.argv.join(" "))))?;
        let stdout = child.stdout.take();
        let stderr = child.stderr.take();
        let work = async {
            let out = async {
                match stdout {
                    Some(s) => read_capped(s, limits.output_cap).await,
                    None => Ok((Vec::new(), false)),
                }
            };
            let err = async {
                match stderr {
                    Some(s) => read_capped(s, 64 * 1024).await,
                    None => Ok((Vec::new(), false)),
                }
            };
            let ((out, truncated), (err, _)) = tokio::try_join!(out, err)?;
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
