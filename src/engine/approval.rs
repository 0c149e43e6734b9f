//! Approval records: one per plan digest and principal, kept as files in the state directory so
//! the out-of-band commands (`runbook-mcp approvals | approve | deny`) and several servers see
//! the same records. Every read-modify-write holds an exclusive lock on `approvals.lock`.
//!
//! States: `pending → approved | declined | cancelled | denied | expired`, and `approved →
//! consumed` when the action runs (used once).

use std::fs::{self, File, OpenOptions};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hmac::{Hmac, Mac};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use super::Effect;

/// Where a record stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ApprovalState {
    Pending,
    Approved,
    Declined,
    Cancelled,
    Denied,
    Expired,
    Consumed,
}

/// One decision delivered to a record.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct DecisionRec {
    /// Who decided (OS user at the terminal, or the MCP client's name).
    pub approver: String,
    /// `terminal`, `elicitation` or `input_required`.
    pub channel: String,
    pub approved: bool,
    /// Unix time in milliseconds.
    pub at_ms: u64,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub note: String,
}

/// A server-side approval record.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ApprovalRecord {
    pub id: String,
    pub digest: String,
    /// SHA-256 of the tool and its canonical arguments: finds the approved record of a call
    /// whose plan changed since (a `stale` re-call).
    #[serde(default)]
    pub args_key: String,
    pub tool: String,
    pub effect: Effect,
    pub principal: String,
    pub reason: String,
    /// Audit request id of the call that asked.
    pub request_id: String,
    /// The plan as lines, for whoever decides.
    pub plan: Vec<String>,
    /// What the approver of a destructive action types back (e.g. `mcp-02`).
    pub confirm_text: String,
    pub created_ms: u64,
    pub expires_ms: u64,
    pub state: ApprovalState,
    /// Distinct approvers needed.
    pub approvals_required: u8,
    /// A destructive plan: the approver types the target back.
    pub out_of_band_only: bool,
    /// The channels whose decisions count for this record (`client`, `terminal`), by policy.
    #[serde(default)]
    pub channels: Vec<String>,
    pub decisions: Vec<DecisionRec>,
}

impl ApprovalRecord {
    /// The channels whose decisions count (records from before channel policy: the client
    /// and the terminal, or the terminal alone for destructive plans).
    pub fn allowed(&self) -> Vec<String> {
        if !self.channels.is_empty() {
            return self.channels.clone();
        }
        if self.out_of_band_only {
            vec!["terminal".into()]
        } else {
            vec!["client".into(), "terminal".into()]
        }
    }

    /// Whether a decision delivered through `channel` (`terminal`, `elicitation`,
    /// `input_required`) counts.
    pub fn counts(&self, channel: &str) -> bool {
        let kind = match channel {
            "elicitation" | "input_required" => "client",
            other => other,
        };
        self.allowed().iter().any(|c| c == kind)
    }

    pub fn approvers(&self) -> Vec<&str> {
        let mut v: Vec<&str> = self
            .decisions
            .iter()
            .filter(|d| d.approved)
            .map(|d| d.approver.as_str())
            .collect();
        v.sort();
        v.dedup();
        v
    }
}

pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// The record store.
pub struct ApprovalStore {
    dir: PathBuf,
    key: Vec<u8>,
}

/// What asking for a decision needs to know.
pub struct NewRequest<'a> {
    pub digest: &'a str,
    pub args_key: &'a str,
    pub tool: &'a str,
    pub effect: Effect,
    pub principal: &'a str,
    pub reason: &'a str,
    pub request_id: &'a str,
    pub plan: Vec<String>,
    pub confirm_text: String,
    pub ttl: Duration,
    pub approvals_required: u8,
    /// Channels whose decisions count (policy for the plan's effect).
    pub channels: Vec<String>,
}

impl ApprovalStore {
    /// Opens (creating) `<state_dir>/approvals` and the key that seals request states.
    pub fn open(state_dir: &Path) -> std::io::Result<Self> {
        let dir = state_dir.join("approvals");
        fs::create_dir_all(&dir)?;
        restrict(state_dir)?;
        restrict(&dir)?;
        let key_path = state_dir.join("approval.key");
        let _lock = lock(&dir)?;
        let key = match fs::read(&key_path) {
            Ok(k) if k.len() >= 32 => k,
            _ => {
                let mut k = vec![0u8; 32];
                getrandom::fill(&mut k).map_err(|e| std::io::Error::other(e.to_string()))?;
                write_private(&key_path, &k)?;
                k
            }
        };
        Ok(Self { dir, key })
    }

    /// The records' file names: `ID~DIGEST12~ARGS12.json`, so the records of one plan (or one
    /// call) are found from the directory listing without reading every record.
    fn names(&self) -> Vec<Name> {
        let Ok(entries) = fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        entries
            .flatten()
            .filter_map(|e| Name::parse(&e.file_name().to_string_lossy()))
            .collect()
    }

    fn path(&self, id: &str) -> Option<PathBuf> {
        self.names()
            .into_iter()
            .find(|n| n.id == id)
            .map(|n| self.dir.join(n.file))
    }

    fn load_file(&self, file: &str) -> Option<ApprovalRecord> {
        let text = fs::read_to_string(self.dir.join(file)).ok()?;
        serde_json::from_str(&text).ok()
    }

    fn load(&self, id: &str) -> Option<ApprovalRecord> {
        if !valid_id(id) {
            return None;
        }
        let text = fs::read_to_string(self.path(id)?).ok()?;
        serde_json::from_str(&text).ok()
    }

    fn save(&self, r: &ApprovalRecord) -> std::io::Result<()> {
        let text = serde_json::to_vec_pretty(r).map_err(std::io::Error::other)?;
        let tmp = self.dir.join(format!(".{}.tmp", r.id));
        write_private(&tmp, &text)?;
        let file = format!("{}~{}~{}.json", r.id, short(&r.digest), short(&r.args_key));
        fs::rename(tmp, self.dir.join(&file))?;
        // One file per record: a record from before this naming (`ID.json`) is replaced.
        for n in self.names() {
            if n.id == r.id && n.file != file {
                let _ = fs::remove_file(self.dir.join(n.file));
            }
        }
        Ok(())
    }

    /// The records whose names say they may match (`by` picks on the parsed name).
    fn some(&self, by: impl Fn(&Name) -> bool) -> Vec<ApprovalRecord> {
        let mut v: Vec<ApprovalRecord> = self
            .names()
            .into_iter()
            .filter(|n| by(n))
            .filter_map(|n| self.load_file(&n.file))
            .collect();
        v.sort_by_key(|r| r.created_ms);
        v
    }

    fn all(&self) -> Vec<ApprovalRecord> {
        self.some(|_| true)
    }

    /// Marks pending records past their expiry as expired (under the lock).
    fn expire(&self, r: &mut ApprovalRecord) -> std::io::Result<()> {
        if matches!(r.state, ApprovalState::Pending | ApprovalState::Approved)
            && now_ms() > r.expires_ms
        {
            r.state = ApprovalState::Expired;
            self.save(r)?;
        }
        Ok(())
    }

    /// Consumes an approved record for this digest and principal, if there is one: the action
    /// may run, once.
    pub fn take_approved(
        &self,
        digest: &str,
        principal: &str,
    ) -> std::io::Result<Option<ApprovalRecord>> {
        let _lock = lock(&self.dir)?;
        for mut r in self.some(|n| n.digest == short(digest)) {
            self.expire(&mut r)?;
            if r.digest == digest && r.principal == principal && r.state == ApprovalState::Approved
            {
                r.state = ApprovalState::Consumed;
                self.save(&r)?;
                return Ok(Some(r));
            }
        }
        Ok(None)
    }

    /// An approved record of the same call (tool, arguments, principal) whose plan is not this
    /// one any more: it is marked expired (it can never run) and returned, so the caller hears
    /// `stale` and what changed, and the next call asks anew.
    pub fn supersede(
        &self,
        args_key: &str,
        principal: &str,
        digest: &str,
    ) -> std::io::Result<Option<ApprovalRecord>> {
        let _lock = lock(&self.dir)?;
        for mut r in self.some(|n| n.args == short(args_key)) {
            self.expire(&mut r)?;
            if !r.args_key.is_empty()
                && r.args_key == args_key
                && r.principal == principal
                && r.digest != digest
                && r.state == ApprovalState::Approved
            {
                r.state = ApprovalState::Expired;
                self.save(&r)?;
                return Ok(Some(r));
            }
        }
        Ok(None)
    }

    /// Removes records that can never matter again: decided or expired more than a day ago.
    /// (They stay in the audit log.)
    fn prune(&self, records: &[ApprovalRecord]) {
        let day = 24 * 3600 * 1000;
        for r in records {
            let done = !matches!(r.state, ApprovalState::Pending | ApprovalState::Approved);
            if done
                && now_ms().saturating_sub(r.expires_ms) > day
                && let Some(p) = self.path(&r.id)
            {
                let _ = fs::remove_file(p);
            }
        }
    }

    /// The open (pending) record for this digest and principal, or a new one.
    pub fn pending(&self, req: NewRequest<'_>) -> std::io::Result<(ApprovalRecord, bool)> {
        let _lock = lock(&self.dir)?;
        for mut r in self.some(|n| n.digest == short(req.digest)) {
            self.expire(&mut r)?;
            if r.digest == req.digest
                && r.principal == req.principal
                && r.state == ApprovalState::Pending
            {
                return Ok((r, false));
            }
        }
        let now = now_ms();
        let r = ApprovalRecord {
            id: new_id()?,
            digest: req.digest.into(),
            args_key: req.args_key.into(),
            tool: req.tool.into(),
            effect: req.effect,
            principal: req.principal.into(),
            reason: req.reason.into(),
            request_id: req.request_id.into(),
            plan: req.plan,
            confirm_text: req.confirm_text,
            created_ms: now,
            expires_ms: now + req.ttl.as_millis() as u64,
            state: ApprovalState::Pending,
            approvals_required: req.approvals_required.max(1),
            out_of_band_only: req.effect == Effect::Destructive,
            channels: req.channels,
            decisions: Vec::new(),
        };
        // A new record is rare: the moment to forget old ones.
        self.prune(&self.all());
        self.save(&r)?;
        Ok((r, true))
    }

    pub fn get(&self, id: &str) -> std::io::Result<Option<ApprovalRecord>> {
        let _lock = lock(&self.dir)?;
        match self.load(id) {
            Some(mut r) => {
                self.expire(&mut r)?;
                Ok(Some(r))
            }
            None => Ok(None),
        }
    }

    /// Every record, newest last (expired ones marked).
    pub fn list(&self) -> std::io::Result<Vec<ApprovalRecord>> {
        let _lock = lock(&self.dir)?;
        let mut v = self.all();
        for r in &mut v {
            self.expire(r)?;
        }
        Ok(v)
    }

    /// Delivers a decision. An approval counts once per approver; the record becomes approved
    /// when enough distinct approvers said yes, declined/denied at the first no.
    pub fn decide(
        &self,
        id: &str,
        d: DecisionRec,
        refusal: ApprovalState,
    ) -> Result<ApprovalRecord, String> {
        let _lock = lock(&self.dir).map_err(|e| e.to_string())?;
        let mut r = self
            .load(id)
            .ok_or_else(|| format!("no approval request {id}"))?;
        self.expire(&mut r).map_err(|e| e.to_string())?;
        if r.state != ApprovalState::Pending {
            return Err(format!("{id} is {:?}, not pending", r.state).to_lowercase());
        }
        if d.approved && !r.counts(&d.channel) {
            return Err(format!(
                "{id}: a decision through `{}` does not count for this plan (policy allows: {})",
                d.channel,
                r.allowed().join(", ")
            ));
        }
        if d.approved && r.approvers().contains(&d.approver.as_str()) {
            return Err(format!(
                "{} already approved {id}; another approver is needed",
                d.approver
            ));
        }
        let approved = d.approved;
        r.decisions.push(d);
        if !approved {
            r.state = refusal;
        } else if r.approvers().len() >= r.approvals_required as usize {
            r.state = ApprovalState::Approved;
        }
        self.save(&r).map_err(|e| e.to_string())?;
        Ok(r)
    }

    /// An opaque, integrity-protected token naming a record (the `requestState` of
    /// 2026-07-28 sessions). Single use is enforced by the record's state, not the token.
    pub fn seal(&self, id: &str) -> String {
        format!("{id}.{}", hex::encode(self.mac(id)))
    }

    /// The record id inside a token, if the token is genuine.
    pub fn unseal(&self, token: &str) -> Option<String> {
        let (id, tag) = token.split_once('.')?;
        let tag = hex::decode(tag).ok()?;
        let mut m = Hmac::<Sha256>::new_from_slice(&self.key).ok()?;
        m.update(id.as_bytes());
        m.verify_slice(&tag).ok()?;
        valid_id(id).then(|| id.to_string())
    }

    fn mac(&self, id: &str) -> Vec<u8> {
        match Hmac::<Sha256>::new_from_slice(&self.key) {
            Ok(mut m) => {
                m.update(id.as_bytes());
                m.finalize().into_bytes().to_vec()
            }
            Err(_) => Vec::new(),
        }
    }
}

pub(crate) fn valid_id(id: &str) -> bool {
    id.len() == 10 && id.starts_with("A-") && id[2..].chars().all(|c| c.is_ascii_hexdigit())
}

fn new_id() -> std::io::Result<String> {
    let mut b = [0u8; 4];
    getrandom::fill(&mut b).map_err(|e| std::io::Error::other(e.to_string()))?;
    Ok(format!("A-{}", hex::encode(b)))
}

fn lock(dir: &Path) -> std::io::Result<LockGuard> {
    use std::os::unix::fs::OpenOptionsExt;
    let f = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(dir.join(".lock"))?;
    // Bounded: a holder that hangs costs a clear error, never a call that waits forever.
    let deadline = std::time::Instant::now() + crate::audit::LOCK_WAIT;
    loop {
        match f.try_lock() {
            Ok(()) => return Ok(LockGuard(f)),
            Err(fs::TryLockError::WouldBlock) if std::time::Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(fs::TryLockError::WouldBlock) => {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "the approval store is locked by another process for over 5 s",
                ));
            }
            Err(fs::TryLockError::Error(e)) => return Err(e),
        }
    }
}

/// Holds the store's lock until dropped.
struct LockGuard(File);

impl Drop for LockGuard {
    fn drop(&mut self) {
        let _ = self.0.unlock();
    }
}

/// A record's file name, parsed.
struct Name {
    file: String,
    id: String,
    digest: String,
    args: String,
}

impl Name {
    fn parse(file: &str) -> Option<Self> {
        let stem = file.strip_suffix(".json")?;
        let mut parts = stem.split('~');
        let id = parts.next()?.to_string();
        if !valid_id(&id) {
            return None;
        }
        Some(Self {
            file: file.into(),
            id,
            digest: parts.next().unwrap_or_default().into(),
            args: parts.next().unwrap_or_default().into(),
        })
    }
}

/// The first 16 hex digits of a digest (`-` for none): enough to find its records.
fn short(d: &str) -> String {
    if d.is_empty() {
        "-".into()
    } else {
        d.chars().take(16).collect()
    }
}

fn write_private(path: &Path, data: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)?;
    f.write_all(data)?;
    f.sync_all()
}

fn restrict(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req<'a>(digest: &'a str, principal: &'a str, effect: Effect) -> NewRequest<'a> {
        NewRequest {
            digest,
            args_key: "",
            tool: "restart_service",
            effect,
            principal,
            reason: "r",
            request_id: "R-00000001",
            plan: vec!["mcp-02: systemctl restart x".into()],
            confirm_text: "mcp-02".into(),
            ttl: Duration::from_secs(60),
            approvals_required: 1,
            channels: Vec::new(),
        }
    }

    fn yes(who: &str, channel: &str) -> DecisionRec {
        DecisionRec {
            approver: who.into(),
            channel: channel.into(),
            approved: true,
            at_ms: now_ms(),
            note: String::new(),
        }
    }

    #[test]
    fn a_lock_held_elsewhere_costs_a_bounded_wait_and_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let store = ApprovalStore::open(dir.path()).unwrap();
        let other = std::fs::File::open(store.dir.join(".lock")).unwrap();
        other.lock().unwrap();
        let started = std::time::Instant::now();
        let e = store.list().unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::TimedOut, "{e}");
        assert!(started.elapsed() < crate::audit::LOCK_WAIT * 2);
        drop(other);
        assert!(store.list().is_ok());
    }

    #[test]
    fn a_symlink_in_the_store_is_never_written_through() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("elsewhere");
        std::fs::write(&target, "x").unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        assert!(write_private(&link, b"record").is_err());
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "x");
    }

    #[test]
    fn records_are_found_by_name_and_old_decided_ones_pruned() {
        let dir = tempfile::tempdir().unwrap();
        let store = ApprovalStore::open(dir.path()).unwrap();
        let (old, _) = store.pending(req("d1", "alice", Effect::Change)).unwrap();
        let mut r = store.get(&old.id).unwrap().unwrap();
        r.state = ApprovalState::Declined;
        r.expires_ms = 1;
        store.save(&r).unwrap();
        let names: Vec<String> = store.names().into_iter().map(|n| n.file).collect();
        assert_eq!(
            names,
            vec![format!("{}~d1~-.json", old.id)],
            "id, digest and call in the name"
        );
        let (new, created) = store.pending(req("d2", "alice", Effect::Change)).unwrap();
        assert!(created);
        assert!(
            store.get(&old.id).unwrap().is_none(),
            "decided more than a day ago: pruned"
        );
        assert_eq!(store.some(|n| n.digest == "d2").len(), 1);
        assert!(store.get(&new.id).unwrap().is_some());
    }

    #[test]
    fn an_approval_runs_one_plan_once_for_its_principal() {
        let dir = tempfile::tempdir().unwrap();
        let s = ApprovalStore::open(dir.path()).unwrap();
        let (r, new) = s.pending(req("d1", "alice", Effect::Change)).unwrap();
        assert!(new);
        let (again, new) = s.pending(req("d1", "alice", Effect::Change)).unwrap();
        assert!(!new);
        assert_eq!(again.id, r.id);
        assert!(
            s.take_approved("d1", "alice").unwrap().is_none(),
            "pending is not approved"
        );
        s.decide(&r.id, yes("op", "terminal"), ApprovalState::Denied)
            .unwrap();
        assert!(
            s.take_approved("d2", "alice").unwrap().is_none(),
            "another plan"
        );
        assert!(
            s.take_approved("d1", "mallory").unwrap().is_none(),
            "another principal"
        );
        assert_eq!(s.take_approved("d1", "alice").unwrap().unwrap().id, r.id);
        assert!(
            s.take_approved("d1", "alice").unwrap().is_none(),
            "used once"
        );
        assert!(
            s.decide(&r.id, yes("op2", "terminal"), ApprovalState::Denied)
                .is_err(),
            "consumed"
        );
    }

    #[test]
    fn destructive_needs_the_terminal_and_maybe_two_people() {
        let dir = tempfile::tempdir().unwrap();
        let s = ApprovalStore::open(dir.path()).unwrap();
        let mut rq = req("d", "alice", Effect::Destructive);
        rq.approvals_required = 2;
        let (r, _) = s.pending(rq).unwrap();
        assert!(
            s.decide(&r.id, yes("client", "elicitation"), ApprovalState::Declined)
                .is_err()
        );
        let r1 = s
            .decide(&r.id, yes("op1", "terminal"), ApprovalState::Denied)
            .unwrap();
        assert_eq!(r1.state, ApprovalState::Pending);
        assert!(
            s.decide(&r.id, yes("op1", "terminal"), ApprovalState::Denied)
                .is_err(),
            "same person twice"
        );
        let r2 = s
            .decide(&r.id, yes("op2", "terminal"), ApprovalState::Denied)
            .unwrap();
        assert_eq!(r2.state, ApprovalState::Approved);
    }

    #[test]
    fn expiry_and_refusals() {
        let dir = tempfile::tempdir().unwrap();
        let s = ApprovalStore::open(dir.path()).unwrap();
        let mut rq = req("d", "alice", Effect::Change);
        rq.ttl = Duration::from_millis(0);
        let (r, _) = s.pending(rq).unwrap();
        std::thread::sleep(Duration::from_millis(5));
        assert_eq!(s.get(&r.id).unwrap().unwrap().state, ApprovalState::Expired);
        assert!(
            s.decide(&r.id, yes("op", "terminal"), ApprovalState::Denied)
                .is_err()
        );

        let (r, _) = s.pending(req("e", "alice", Effect::Change)).unwrap();
        let no = DecisionRec {
            approved: false,
            ..yes("op", "terminal")
        };
        assert_eq!(
            s.decide(&r.id, no, ApprovalState::Denied).unwrap().state,
            ApprovalState::Denied
        );
    }

    #[test]
    fn sealed_tokens_cannot_be_forged() {
        let dir = tempfile::tempdir().unwrap();
        let s = ApprovalStore::open(dir.path()).unwrap();
        let t = s.seal("A-0011aabb");
        assert_eq!(s.unseal(&t).as_deref(), Some("A-0011aabb"));
        assert!(s.unseal("A-0011aabb.00").is_none());
        let forged = t.replace("A-0011aabb", "A-0011aabc");
        assert!(s.unseal(&forged).is_none());
        let other = ApprovalStore::open(tempfile::tempdir().unwrap().path()).unwrap();
        assert!(other.unseal(&t).is_none(), "another key");
        assert!(s.unseal("../../etc.ab").is_none());
    }
}
