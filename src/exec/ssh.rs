//! The ssh executor: one master connection per host (openssh native mux), opened on first use,
//! reused by every call, re-opened when it has died. Every option is set explicitly — strict
//! host keys against the configured known_hosts, our own control directory, our own ssh config
//! file instead of the user's — and every word goes through `arg()` (quoted for the remote
//! shell), never `raw_arg()`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use openssh::{ControlPersist, KnownHosts, Session, SessionBuilder, Stdio};
use tokio::sync::Mutex;

use super::{Cmd, CmdOutput, ExecError, Limits, read_capped, read_stdout, wrap_argv, write_input};
use crate::config::{SshSettings, SshTarget};

/// Exit status of coreutils `timeout` when it had to stop the command.
const TIMEOUT_EXIT: i32 = 124;
/// Extra time allowed beyond the command's own timeout for the round trip.
const GRACE: Duration = Duration::from_secs(2);
/// Sessions open at once on one connection: sshd's default `MaxSessions` is 10.
const MAX_SESSIONS: usize = 8;

pub struct SshExec {
    host: String,
    destination: String,
    builder: SessionBuilder,
    connect_timeout: Duration,
    sudo: bool,
    session: Mutex<Option<Arc<Session>>>,
    slots: tokio::sync::Semaphore,
    dir: Arc<ControlDir>,
}

impl SshExec {
    pub fn new(
        name: &str,
        t: &SshTarget,
        sudo: bool,
        settings: &SshSettings,
        dir: Arc<ControlDir>,
    ) -> Self {
        let mut b = SessionBuilder::default();
        b.known_hosts_check(KnownHosts::Strict)
            .control_directory(&dir.path)
            // Never clean "history" dirs: the crate would delete the dirs of masters other
            // hosts (or other servers) are opening at that very moment. `ControlDir` prunes
            // the directories of dead servers instead.
            .clean_history_control_directory(false)
            .config_file(dir.path.join(CONFIG_NAME))
            .connect_timeout(settings.connect_timeout)
            .server_alive_interval(Duration::from_secs(5));
        if let Ok(n) = usize::try_from(settings.control_persist.as_secs())
            && let Some(n) = std::num::NonZeroUsize::new(n)
        {
            b.control_persist(ControlPersist::IdleFor(n));
        }
        if let Some(k) = &settings.known_hosts {
            b.user_known_hosts_file(k);
        }
        if let Some(k) = &settings.identity_file {
            b.keyfile(k);
        }
        if let Some(u) = &t.user {
            b.user(u.clone());
        }
        if let Some(p) = t.port {
            b.port(p);
        }
        if !t.proxy_jump.is_empty() {
            b.jump_hosts(&t.proxy_jump);
        }
        Self {
            host: name.into(),
            destination: t.host.clone(),
            builder: b,
            connect_timeout: settings.connect_timeout,
            sudo,
            session: Mutex::new(None),
            slots: tokio::sync::Semaphore::new(MAX_SESSIONS),
            dir,
        }
    }

    pub async fn connect(&self) -> Result<(), ExecError> {
        self.session().await.map(|_| ())
    }

    /// The live master, opening one if there is none. The lock is per host, so a slow host
    /// only delays its own calls.
    async fn session(&self) -> Result<Arc<Session>, ExecError> {
        let mut slot = self.session.lock().await;
        if let Some(s) = slot.as_ref() {
            return Ok(s.clone());
        }
        self.dir.ensure().map_err(ExecError::Failed)?;
        let deadline = self.connect_timeout + GRACE;
        let s = tokio::time::timeout(deadline, self.builder.connect_mux(&self.destination))
            .await
            .map_err(|_| ExecError::Unreachable(format!("connect timed out after {deadline:?}")))?
            .map_err(|e| ExecError::Unreachable(one_line(&chain(&e))))?;
        tracing::info!(host = %self.host, "ssh master open");
        let s = Arc::new(s);
        *slot = Some(s.clone());
        Ok(s)
    }

    /// Forgets `dead` if it is still the current master.
    async fn forget(&self, dead: &Arc<Session>) {
        let mut slot = self.session.lock().await;
        if slot.as_ref().is_some_and(|s| Arc::ptr_eq(s, dead)) {
            *slot = None;
        }
    }

    pub async fn run(&self, cmd: &Cmd, limits: Limits) -> Result<CmdOutput, ExecError> {
        let started = Instant::now();
        let total = limits.timeout + GRACE;
        let attempt = async {
            let _slot = self
                .slots
                .acquire()
                .await
                .map_err(|e| ExecError::Failed(e.to_string()))?;
            let session = self.session().await?;
            match self.run_on(&session, cmd, limits).await {
                // The command never started: the master may have died. Re-open once; this is
                // safe because nothing ran.
                Err(Spawn(e)) => {
                    tracing::info!(host = %self.host, "ssh master lost ({e}); reconnecting");
                    self.forget(&session).await;
                    let session = self.session().await?;
                    self.run_on(&session, cmd, limits)
                        .await
                        .map_err(ExecError::from)
                }
                other => other.map_err(ExecError::from),
            }
        };
        let mut out = tokio::time::timeout(total, attempt)
            .await
            .map_err(|_| ExecError::TimedOut(limits.timeout))??;
        if out.exit_code == Some(TIMEOUT_EXIT) && started.elapsed() >= limits.timeout {
            return Err(ExecError::TimedOut(limits.timeout));
        }
        out.elapsed = started.elapsed();
        Ok(out)
    }

    async fn run_on(
        &self,
        session: &Arc<Session>,
        cmd: &Cmd,
        limits: Limits,
    ) -> Result<CmdOutput, RunError> {
        let argv = wrap_argv(cmd, self.sudo, Some(limits.timeout));
        let mut c = Session::to_command(session.clone(), "env");
        for a in &argv[1..] {
            c.arg(a);
        }
        c.stdin(if cmd.input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        let mut child = c.spawn().await.map_err(|e| Spawn(e.to_string()))?;
        let stdout = child.stdout().take();
        let stderr = child.stderr().take();
        let input = write_input(child.stdin().take(), cmd.input.as_deref());
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
        let (_, (out, truncated), (err, _)) =
            tokio::try_join!(input, out, err).map_err(|e| Other(e.to_string()))?;
        let status = child.wait().await.map_err(|e| Other(e.to_string()))?;
        Ok(CmdOutput {
            exit_code: status.code(),
            stdout: String::from_utf8_lossy(&out).into_owned(),
            stderr: String::from_utf8_lossy(&err).into_owned(),
            truncated,
            elapsed: Duration::ZERO,
        })
    }
}

enum RunError {
    Spawn(String),
    Other(String),
}
use RunError::{Other, Spawn};

impl From<RunError> for ExecError {
    fn from(e: RunError) -> Self {
        match e {
            Spawn(m) => ExecError::Unreachable(m),
            Other(m) => ExecError::Failed(m),
        }
    }
}

const CONFIG_NAME: &str = "ssh_config";

/// This server's ssh control directory, `<state>/ssh/ctl-<pid>`: one per server process, since
/// several servers may share a state dir (one stdio server per editor window) and must never
/// touch each other's sockets. Created on the first connection, not at start-up.
pub struct ControlDir {
    root: PathBuf,
    path: PathBuf,
    ready: std::sync::OnceLock<Result<(), String>>,
}

impl ControlDir {
    pub fn new(state_dir: &Path) -> Self {
        let root = state_dir.join("ssh");
        let path = root.join(format!("ctl-{}", std::process::id()));
        Self {
            root,
            path,
            ready: std::sync::OnceLock::new(),
        }
    }

    fn ensure(&self) -> Result<(), String> {
        self.ready
            .get_or_init(|| {
                prune_dead(&self.root);
                std::fs::create_dir_all(&self.path)
                    .and_then(|()| restrict(&self.path))
                    .and_then(|()| write_ssh_config(&self.path.join(CONFIG_NAME)))
                    .map_err(|e| format!("ssh control directory {}: {e}", self.path.display()))
            })
            .clone()
    }
}

impl Drop for ControlDir {
    /// The last executor is gone (its masters closed first): leave nothing behind.
    fn drop(&mut self) {
        if self.ready.get().is_some() {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

/// Removes the `ctl-<pid>` directories of servers that are gone (crashed or killed).
fn prune_dead(root: &Path) {
    let Ok(entries) = std::fs::read_dir(root) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(pid) = name.to_str().and_then(|n| n.strip_prefix("ctl-")) else {
            continue;
        };
        if pid.parse::<u32>().is_ok() && !Path::new("/proc").join(pid).exists() {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

/// Our own ssh_config: used instead of `~/.ssh/config` so the user's settings never change
/// what runs. curve25519 first: a new connection costs 0.13 s instead of 0.19 s.
fn write_ssh_config(path: &Path) -> std::io::Result<()> {
    let text = "# written by runbook-mcp; replaces the user's ~/.ssh/config for its connections\n\
Host *\n\
  BatchMode yes\n\
  StrictHostKeyChecking yes\n\
  GlobalKnownHostsFile /dev/null\n\
  UpdateHostKeys no\n\
  HashKnownHosts no\n\
  PasswordAuthentication no\n\
  KbdInteractiveAuthentication no\n\
  ForwardAgent no\n\
  ForwardX11 no\n\
  ClearAllForwardings yes\n\
  ServerAliveCountMax 3\n\
  KexAlgorithms ^curve25519-sha256,curve25519-sha256@libssh.org\n\
  LogLevel ERROR\n";
    std::fs::write(path, text)
}

/// Control sockets grant command execution on the fleet: only our user may reach them.
fn restrict(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
}

/// An error with its causes: openssh's top-level message ("failed to connect to the remote
/// host") hides the part a person needs ("Permission denied", "Host key verification failed").
fn chain(e: &dyn std::error::Error) -> String {
    let mut msg = e.to_string();
    let mut src = e.source();
    while let Some(s) = src {
        msg = format!("{msg}: {s}");
        src = s.source();
    }
    msg
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}
