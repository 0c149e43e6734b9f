//! Executors: how a command reaches a host. `local` runs argv directly (never a shell), `ssh`
//! multiplexes over one master connection per host, `http` makes requests from the server.
//! Every execution has a timeout and an output cap; a hung host costs its timeout, nothing more.

mod http;
mod local;
pub mod manager;
mod ssh;

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use http::{HttpClient, HttpReply, HttpRequest};

use crate::config::{Config, Host, Target};

/// One command for one host. `argv[0]` is the program; nothing is ever interpreted by a shell
/// on our side, and over ssh every word is quoted for the remote shell.
#[derive(Debug, Clone)]
pub struct Cmd {
    pub argv: Vec<String>,
    /// Needs root: wrapped in `sudo -n --` on hosts configured with `sudo = true`.
    pub privileged: bool,
    /// Environment of the child process (local executor only: ssh refuses a command with one).
    /// This is how secrets reach a local CLI — never as arguments, which `ps` shows.
    pub env: Env,
    /// Where stdout goes chunk by chunk instead of being kept (a log scan: memory bounded by
    /// the result, not by the output); `CmdOutput::stdout` is then empty.
    pub sink: Option<Sink>,
    /// Bytes written to the child's stdin (then closed); `None`: stdin is `/dev/null`.
    pub input: Option<Vec<u8>>,
}

/// A consumer of a command's stdout, called with each chunk as it arrives.
#[derive(Clone)]
pub struct Sink(pub std::sync::Arc<SinkFn>);

type SinkFn = dyn Fn(&[u8]) + Send + Sync;

impl std::fmt::Debug for Sink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sink")
    }
}

/// Variables set for (or removed from) one child process. Values may be secrets: `Debug`
/// shows names only, and nothing logs them.
#[derive(Clone, Default)]
pub struct Env {
    pub set: Vec<(String, String)>,
    pub remove: Vec<String>,
}

impl Env {
    pub fn is_empty(&self) -> bool {
        self.set.is_empty() && self.remove.is_empty()
    }
}

impl fmt::Debug for Env {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Env")
            .field("set", &self.set.iter().map(|(k, _)| k).collect::<Vec<_>>())
            .field("remove", &self.remove)
            .finish()
    }
}

impl Cmd {
    pub fn new<I, S>(argv: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self {
            argv: argv.into_iter().map(Into::into).collect(),
            privileged: false,
            env: Env::default(),
            sink: None,
            input: None,
        }
    }

    /// Streams stdout into `sink` instead of keeping it.
    pub fn streamed(mut self, sink: Sink) -> Self {
        self.sink = Some(sink);
        self
    }

    pub fn privileged(mut self) -> Self {
        self.privileged = true;
        self
    }

    /// Sets `name=value` in the child's environment only.
    pub fn env(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.set.push((name.into(), value.into()));
        self
    }

    /// Removes `name` from the child's environment (e.g. a stray credential of the server's).
    pub fn env_remove(mut self, name: impl Into<String>) -> Self {
        self.env.remove.push(name.into());
        self
    }
}

/// What a command printed, capped.
#[derive(Debug, Clone)]
pub struct CmdOutput {
    pub exit_code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    /// The output was longer than the cap and was cut.
    pub truncated: bool,
    pub elapsed: Duration,
}

impl CmdOutput {
    pub fn success(&self) -> bool {
        self.exit_code == Some(0)
    }
}

/// Why a command produced no output.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum ExecError {
    /// The deadline passed; for a mutating step the outcome is unknown.
    #[error("timed out after {0:?}")]
    TimedOut(Duration),
    /// The host could not be reached (connection, authentication, host key).
    #[error("unreachable: {0}")]
    Unreachable(String),
    /// The command could not be started.
    #[error("could not run: {0}")]
    Failed(String),
}

/// Limits applied to every execution.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub timeout: Duration,
    pub output_cap: usize,
}

/// The executor for one host.
pub enum HostExec {
    Local(local::LocalExec),
    Ssh(Box<ssh::SshExec>),
}

impl HostExec {
    pub async fn run(&self, cmd: &Cmd, limits: Limits) -> Result<CmdOutput, ExecError> {
        match self {
            HostExec::Local(l) => l.run(cmd, limits).await,
            // Secrets go in a child's environment only locally; over ssh they would need the
            // remote sshd's AcceptEnv or a command line, so such a command is refused.
            HostExec::Ssh(_) if !cmd.env.is_empty() => Err(ExecError::Failed(
                "environment variables are only passed to local commands".into(),
            )),
            HostExec::Ssh(s) => s.run(cmd, limits).await,
        }
    }

    /// Opens (or checks) the connection without running anything.
    pub async fn connect(&self) -> Result<(), ExecError> {
        match self {
            HostExec::Local(_) => Ok(()),
            HostExec::Ssh(s) => s.connect().await,
        }
    }
}

/// Executors for every host of the inventory, built once and shared by all calls so ssh
/// masters are reused. Clones share the executors.
#[derive(Clone)]
pub struct Fleet {
    execs: BTreeMap<String, Arc<HostExec>>,
    limits: Limits,
}

impl Fleet {
    pub fn new(config: &Config) -> anyhow::Result<Self> {
        let mut execs = BTreeMap::new();
        let ssh_dir = Arc::new(ssh::ControlDir::new(&config.server.state_dir));
        for h in &config.hosts {
            let exec = match &h.target {
                Target::Local => HostExec::Local(local::LocalExec::new(h.sudo)),
                Target::Ssh(t) => {
                    let ssh = ssh::SshExec::new(&h.name, t, h.sudo, &config.ssh, ssh_dir.clone());
                    HostExec::Ssh(Box::new(ssh))
                }
            };
            execs.insert(h.name.clone(), Arc::new(exec));
        }
        Ok(Self {
            execs,
            limits: Limits {
                timeout: config.server.command_timeout,
                output_cap: config.server.output_cap,
            },
        })
    }

    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Runs `cmd` on `host` with the default limits.
    pub async fn run(&self, host: &Host, cmd: &Cmd) -> Result<CmdOutput, ExecError> {
        self.run_with(host, cmd, self.limits).await
    }

    pub async fn run_with(
        &self,
        host: &Host,
        cmd: &Cmd,
        limits: Limits,
    ) -> Result<CmdOutput, ExecError> {
        self.run_named(&host.name, cmd, limits).await
    }

    /// Runs `cmd` on the inventory host called `name`.
    pub async fn run_named(
        &self,
        name: &str,
        cmd: &Cmd,
        limits: Limits,
    ) -> Result<CmdOutput, ExecError> {
        let exec = self
            .execs
            .get(name)
            .ok_or_else(|| ExecError::Failed(format!("no executor for host {name}")))?;
        let started = Instant::now();
        let out = exec.run(cmd, limits).await;
        tracing::debug!(host = %name, argv = ?cmd.argv, elapsed_ms = started.elapsed().as_millis() as u64, ok = out.is_ok(), "exec");
        out
    }

    /// Runs `cmd` on this machine, for targets that are not inventory hosts (the `docker` CLI
    /// talking to a Swarm manager): the local executor (argv, never a shell, never sudo) with
    /// the same timeout and output cap as every other command.
    pub async fn run_local(&self, cmd: &Cmd) -> Result<CmdOutput, ExecError> {
        self.run_local_with(cmd, self.limits).await
    }

    pub async fn run_local_with(&self, cmd: &Cmd, limits: Limits) -> Result<CmdOutput, ExecError> {
        let started = Instant::now();
        let out = local::LocalExec::new(false).run(cmd, limits).await;
        tracing::debug!(host = "server", argv = ?cmd.argv, elapsed_ms = started.elapsed().as_millis() as u64, ok = out.is_ok(), "exec");
        out
    }

    /// Opens every ssh master in the background (so the first call is warm), logging failures.
    pub fn warm_up(&self) {
        for (name, exec) in &self.execs {
            let (name, exec) = (name.clone(), exec.clone());
            tokio::spawn(async move {
                if let Err(e) = exec.connect().await {
                    tracing::warn!(host = %name, "warm-up: {e}");
                }
            });
        }
    }

    pub async fn connect(&self, host: &str) -> Result<(), ExecError> {
        match self.execs.get(host) {
            Some(e) => e.connect().await,
            None => Err(ExecError::Failed(format!("no executor for host {host}"))),
        }
    }
}

/// The argv actually started: `LC_ALL=C` so output parses the same everywhere, the remote
/// `timeout` so a command whose call gave up does not run on, and `sudo -n` when needed.
pub(crate) fn wrap_argv(cmd: &Cmd, sudo: bool, remote_timeout: Option<Duration>) -> Vec<String> {
    let mut argv: Vec<String> = vec!["env".into(), "LC_ALL=C".into()];
    if let Some(t) = remote_timeout {
        argv.extend([
            "timeout".into(),
            "-k".into(),
            "2".into(),
            format!("{}", t.as_secs().max(1)),
        ]);
    }
    if cmd.privileged && sudo {
        argv.extend(["sudo".into(), "-n".into(), "--".into()]);
    }
    argv.extend(cmd.argv.iter().cloned());
    argv
}

/// Writes a command's input to its stdin and closes it (a dropped pipe ends the input).
pub(crate) async fn write_input<W>(w: Option<W>, input: Option<&[u8]>) -> std::io::Result<()>
where
    W: tokio::io::AsyncWrite + Unpin,
{
    use tokio::io::AsyncWriteExt;
    if let (Some(mut w), Some(bytes)) = (w, input) {
        // A child that exits without reading (sudo refused it) closes the pipe: its exit code
        // and stderr say why, not our EPIPE.
        match w.write_all(bytes).await.and(w.shutdown().await) {
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
            other => other?,
        }
    }
    Ok(())
}

/// A command's stdout: into its sink when it has one, else kept up to `cap`.
pub(crate) async fn read_stdout<R>(
    r: R,
    cap: usize,
    sink: Option<&Sink>,
) -> std::io::Result<(Vec<u8>, bool)>
where
    R: tokio::io::AsyncRead + Unpin,
{
    let Some(sink) = sink else {
        return read_capped(r, cap).await;
    };
    use tokio::io::AsyncReadExt;
    let mut r = r;
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = r.read(&mut buf).await?;
        if n == 0 {
            return Ok((Vec::new(), false));
        }
        (sink.0)(&buf[..n]);
    }
}

/// Reads a stream to its end, keeping at most `cap` bytes (the rest is drained so the writer
/// never blocks on a full pipe).
pub(crate) async fn read_capped<R>(mut r: R, cap: usize) -> std::io::Result<(Vec<u8>, bool)>
where
    R: tokio::io::AsyncRead + Unpin,
{
    use tokio::io::AsyncReadExt;
    let mut kept = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    let mut truncated = false;
    loop {
        let n = r.read(&mut buf).await?;
        if n == 0 {
            return Ok((kept, truncated));
        }
        let room = cap.saturating_sub(kept.len());
        if n > room {
            truncated = true;
        }
        kept.extend_from_slice(&buf[..n.min(room)]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrap_puts_timeout_before_sudo_so_sudoers_sees_the_real_command() {
        let cmd = Cmd::new(["systemctl", "restart", "nginx"]).privileged();
        let argv = wrap_argv(&cmd, true, Some(Duration::from_secs(5)));
        assert_eq!(
            argv,
            [
                "env",
                "LC_ALL=C",
                "timeout",
                "-k",
                "2",
                "5",
                "sudo",
                "-n",
                "--",
                "systemctl",
                "restart",
                "nginx"
            ]
        );
        assert_eq!(
            wrap_argv(&cmd, false, None),
            ["env", "LC_ALL=C", "systemctl", "restart", "nginx"]
        );
        let read = Cmd::new(["cat", "/proc/loadavg"]);
        assert!(!wrap_argv(&read, true, None).contains(&"sudo".to_string()));
    }

    #[tokio::test]
    async fn read_capped_keeps_cap_and_flags_truncation() {
        let data = vec![b'x'; 100_000];
        let (kept, cut) = read_capped(&data[..], 1000).await.unwrap();
        assert_eq!(kept.len(), 1000);
        assert!(cut);
        let (kept, cut) = read_capped(&data[..10], 1000).await.unwrap();
        assert_eq!(kept.len(), 10);
        assert!(!cut);
    }
}
