//! One `getUpdates` long-poller per bot token across every server sharing the state directory:
//! Telegram answers a second concurrent poller with 409, so a lock file (named after the
//! token's fingerprint, never the token) decides who polls. The others keep trying the lock,
//! and meanwhile see every decision in the shared approval store. The offset is kept in the
//! state directory, so a poller that takes over neither replays nor skips a press.

use std::collections::HashSet;
use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

use serde_json::json;

use super::{Bot, BotError, press};
use crate::config::Config;
use crate::exec::HttpClient;

/// Everything a press is decided with.
pub(super) struct Poller {
    pub config: Arc<Config>,
    pub bot: Bot,
    pub approvals: Arc<crate::engine::approval::ApprovalStore>,
    pub audit: Arc<crate::audit::AuditLog>,
}

/// Starts this process's poller for the configured bot, once (it lives as long as the
/// process). Nothing when `[approval.telegram]` is absent.
pub fn ensure_polling(
    config: &Arc<Config>,
    http: &HttpClient,
    approvals: Arc<crate::engine::approval::ApprovalStore>,
    audit: Arc<crate::audit::AuditLog>,
) {
    static STARTED: LazyLock<Mutex<HashSet<PathBuf>>> =
        LazyLock::new(|| Mutex::new(HashSet::new()));
    let Some(t) = &config.approval.telegram else {
        return;
    };
    let bot = match Bot::new(config, t, http.clone()) {
        Ok(b) => b,
        Err(e) => {
            tracing::warn!("telegram approvals: {e}");
            return;
        }
    };
    let lock = config
        .server
        .state_dir
        .join("telegram")
        .join(format!("poller-{}.lock", bot.fingerprint()));
    let first = STARTED.lock().is_ok_and(|mut s| s.insert(lock.clone()));
    if !first {
        return;
    }
    let p = Arc::new(Poller {
        config: config.clone(),
        bot,
        approvals,
        audit,
    });
    tokio::spawn(async move { run(p, lock).await });
}

/// Holds `path` exclusively while the returned file is open; `None` when another holds it.
fn try_lock(path: &Path) -> Option<File> {
    std::fs::create_dir_all(path.parent()?).ok()?;
    let f = crate::audit::store::private(
        std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false),
    )
    .open(path)
    .ok()?;
    // SAFETY: flock on a descriptor this function owns; no memory is involved.
    let rc = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    (rc == 0).then_some(f)
}

fn offset_path(p: &Poller) -> PathBuf {
    p.config
        .server
        .state_dir
        .join("telegram")
        .join(format!("offset-{}", p.bot.fingerprint()))
}

async fn run(p: Arc<Poller>, lock: PathBuf) {
    let poll = p
        .config
        .approval
        .telegram
        .as_ref()
        .map_or(25, |t| t.poll_timeout_secs);
    loop {
        let Some(_held) = try_lock(&lock) else {
            // Another server polls this bot; its decisions reach us through the store.
            tokio::time::sleep(Duration::from_secs(1)).await;
            continue;
        };
        tracing::info!("telegram approvals: this server polls the bot");
        loop {
            let offset: i64 = std::fs::read_to_string(offset_path(&p))
                .ok()
                .and_then(|s| s.trim().parse().ok())
                .unwrap_or(0);
            let body = json!({
                "offset": offset,
                "timeout": poll,
                "allowed_updates": ["callback_query", "message"],
            });
            let updates = match p
                .bot
                .call("getUpdates", body, Duration::from_secs(poll + 10))
                .await
            {
                Ok(u) => u,
                Err(BotError::Conflict(e)) => {
                    tracing::warn!("telegram approvals: {e}; retrying");
                    tokio::time::sleep(Duration::from_secs(2)).await;
                    continue;
                }
                Err(e) => {
                    tracing::warn!("telegram approvals: {e}; retrying");
                    tokio::time::sleep(Duration::from_secs(2)).await;
                    continue;
                }
            };
            for u in updates.as_array().into_iter().flatten() {
                let Some(id) = u["update_id"].as_i64() else {
                    continue;
                };
                // The offset moves before the press is handled: a press that crashes the
                // handler is not handled twice (it is answered, or it times out on the phone).
                if let Err(e) = std::fs::write(offset_path(&p), (id + 1).to_string()) {
                    tracing::warn!("telegram approvals: keeping the offset: {e}");
                }
                press::on_update(&p, u).await;
            }
        }
    }
}
