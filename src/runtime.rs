//! The composition root: the real executor sealed plans run through (ssh or local argv per
//! host, reqwest from the server, PostgreSQL over the configured URL), and the engine built
//! with the project's registry. Secrets are resolved here, by name, at the moment of use.

use std::sync::Arc;
use std::time::Duration;

use crate::config::Config;
use crate::engine::call::BoxFuture;
use crate::engine::executor::{Executor, SqlReply};
use crate::engine::plan::{Command, EnvVar, SERVER};
use crate::engine::{Engine, Executors, Mode};
use crate::exec::{Cmd, CmdOutput, ExecError, Fleet, HttpClient, HttpReply, HttpRequest};

/// The executor of real plans.
pub struct Real {
    config: Arc<Config>,
    fleet: Fleet,
    http: HttpClient,
}

impl Real {
    pub fn new(config: Arc<Config>, fleet: Fleet, http: HttpClient) -> Self {
        Self {
            config,
            fleet,
            http,
        }
    }

    fn cmd(&self, c: &Command) -> Result<Cmd, ExecError> {
        let mut cmd = Cmd::new(c.argv.iter().cloned());
        cmd.privileged = c.sudo;
        cmd.input = c.stdin.as_ref().map(|s| s.as_bytes().to_vec());
        for e in &c.env {
            cmd = match e {
                EnvVar::Set { name, value } => cmd.env(name, value),
                EnvVar::Secret { name, secret } => {
                    let v = self.config.secrets.get(secret).map_err(ExecError::Failed)?;
                    cmd.env(name, v)
                }
                EnvVar::Remove { name } => cmd.env_remove(name),
            };
        }
        Ok(cmd)
    }
}

impl Executor for Real {
    fn run<'a>(&'a self, c: &'a Command) -> BoxFuture<'a, Result<CmdOutput, ExecError>> {
        Box::pin(async move {
            let cmd = self.cmd(c)?;
            let mut limits = self.fleet.limits();
            if let Some(t) = c.timeout_secs {
                limits.timeout = Duration::from_secs(t);
            }
            if c.at.host == SERVER {
                self.fleet.run_local_with(&cmd, limits).await
            } else {
                self.fleet.run_named(&c.at.host, &cmd, limits).await
            }
        })
    }

    fn get<'a>(
        &'a self,
        url: &'a str,
        api_key_secret: Option<&'a str>,
    ) -> BoxFuture<'a, Result<HttpReply, ExecError>> {
        Box::pin(async move {
            let mut req = HttpRequest::get(url, self.config.server.http_timeout);
            if let Some(s) = api_key_secret {
                let key = self.config.secrets.get(s).map_err(ExecError::Failed)?;
                req = req.header("X-API-Key", key);
            }
            self.http.send(&req).await
        })
    }

    fn send<'a>(
        &'a self,
        m: &'a crate::engine::send::Message,
    ) -> BoxFuture<'a, Result<HttpReply, ExecError>> {
        Box::pin(async move {
            let req = crate::engine::send::request(
                m,
                &self.config.secrets,
                self.config.server.http_timeout,
            )
            .map_err(ExecError::Failed)?;
            self.http.send(&req).await
        })
    }

    fn sql<'a>(&'a self, statement: &'a str) -> BoxFuture<'a, Result<SqlReply, ExecError>> {
        Box::pin(async move {
            use crate::tools::database::conn;
            let settings =
                conn::settings(&self.config).map_err(|e| ExecError::Failed(e.message))?;
            let session = conn::connect_with(&settings)
                .await
                .map_err(|e| ExecError::Unreachable(e.message))?;
            let messages = session
                .bounded(statement, session.client.simple_query(statement))
                .await
                .map_err(|e| {
                    if e.message.contains("did not answer") {
                        ExecError::TimedOut(session.deadline)
                    } else {
                        ExecError::Failed(e.message)
                    }
                })?;
            let rows = messages
                .iter()
                .filter_map(|m| match m {
                    tokio_postgres::SimpleQueryMessage::Row(r) => {
                        Some((0..r.len()).map(|i| r.get(i).map(String::from)).collect())
                    }
                    _ => None,
                })
                .collect();
            Ok(SqlReply {
                rows,
                notices: session.notices(),
            })
        })
    }
}

/// The state directory, made ready at start-up: created if missing, mode 0700 (its files
/// grant approvals and its sockets command execution), owned by this account (one made by
/// someone else could be read or swapped by them), and not a symbolic link.
pub fn prepare_state_dir(dir: &std::path::Path) -> anyhow::Result<()> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    std::fs::create_dir_all(dir)
        .map_err(|e| anyhow::anyhow!("state directory {}: {e}", dir.display()))?;
    let m = std::fs::symlink_metadata(dir)?;
    if m.file_type().is_symlink() || !m.is_dir() {
        anyhow::bail!(
            "state directory {} is not a directory (a symbolic link?)",
            dir.display()
        );
    }
    let me = crate::engine::identity::ids().map(|i| i.euid);
    if me.is_some_and(|u| u != m.uid()) {
        anyhow::bail!(
            "state directory {} belongs to uid {}, not to this account: refusing to keep approvals there",
            dir.display(),
            m.uid()
        );
    }
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    Ok(())
}

/// The server's engine: the project's registry, acting on the real fleet.
pub fn engine(config: Config, mode: Mode) -> anyhow::Result<Engine> {
    prepare_state_dir(&config.server.state_dir)?;
    let config = Arc::new(config);
    let fleet = Fleet::new(&config)?;
    let http = HttpClient::new(config.server.output_cap)?;
    let actions = Arc::new(Real::new(config.clone(), fleet.clone(), http.clone()));
    let engine = Engine::new(
        config,
        mode,
        crate::tools::registry,
        Executors {
            fleet,
            http,
            actions,
        },
    );
    engine.check_policy()?;
    Ok(engine)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn the_state_dir_is_ours_and_private_from_the_start() {
        let d = tempfile::tempdir().unwrap();
        let state = d.path().join("state");
        std::fs::create_dir(&state).unwrap();
        std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o755)).unwrap();
        super::prepare_state_dir(&state).unwrap();
        let mode = std::fs::metadata(&state).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
        let link = d.path().join("link");
        std::os::unix::fs::symlink(&state, &link).unwrap();
        assert!(
            super::prepare_state_dir(&link)
                .unwrap_err()
                .to_string()
                .contains("symbolic link")
        );
    }
}
