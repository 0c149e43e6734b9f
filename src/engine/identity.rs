//! Who a process acts for, from the kernel: the real uid of this process, named by the
//! system's account database — never `$USER`, `$LOGNAME` or `$SUDO_USER`, which any process
//! can set. `SUDO_UID` names the person behind sudo, and is believed only where sudo alone could
//! have set it: when this process runs as root, or as the configured service account of the
//! dedicated-user deployment (whose sudoers rules the operator cannot change).

/// The real and effective uid of this process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ids {
    pub uid: u32,
    pub euid: u32,
}

/// This process's ids, from `/proc/self/status` (`Uid: real effective saved fs`).
pub fn ids() -> Option<Ids> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find_map(|l| l.strip_prefix("Uid:"))?;
    let mut f = line.split_whitespace().map(|v| v.parse::<u32>().ok());
    Some(Ids {
        uid: f.next()??,
        euid: f.next()??,
    })
}

/// The account `uid` names in the account database (`/etc/passwd`), else `uid N`.
pub fn name_of(uid: u32) -> String {
    std::fs::read_to_string("/etc/passwd")
        .ok()
        .and_then(|p| {
            p.lines().find_map(|l| {
                let f: Vec<&str> = l.split(':').collect();
                (f.get(2) == Some(&uid.to_string().as_str())).then(|| f[0].to_string())
            })
        })
        .unwrap_or_else(|| format!("uid {uid}"))
}

/// The uid of account `name`.
pub fn uid_of(name: &str) -> Option<u32> {
    let p = std::fs::read_to_string("/etc/passwd").ok()?;
    p.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.first() == Some(&name))
            .then(|| f.get(2).and_then(|u| u.parse().ok()))
            .flatten()
    })
}

/// Whose decision this is: the sudo caller when sudo alone could have said so, else the
/// process's own real uid.
pub fn acting_uid(ids: Ids, sudo_uid: Option<u32>, service_uid: Option<u32>) -> u32 {
    match sudo_uid {
        Some(s) if ids.euid == 0 || Some(ids.euid) == service_uid => s,
        _ => ids.uid,
    }
}

/// The account this process acts for (see the module doc), by name.
pub fn account(service_account: Option<&str>) -> String {
    let Some(ids) = ids() else {
        return "unknown".into();
    };
    let sudo_uid = std::env::var("SUDO_UID").ok().and_then(|v| v.parse().ok());
    let service_uid = service_account.and_then(uid_of);
    name_of(acting_uid(ids, sudo_uid, service_uid))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sudo_uid_counts_only_where_only_sudo_could_set_it() {
        let user = Ids {
            uid: 1000,
            euid: 1000,
        };
        assert_eq!(acting_uid(user, None, None), 1000);
        assert_eq!(
            acting_uid(user, Some(1001), None),
            1000,
            "a user's own SUDO_UID=…"
        );
        let root = Ids { uid: 0, euid: 0 };
        assert_eq!(acting_uid(root, Some(1001), None), 1001, "root under sudo");
        let service = Ids {
            uid: 990,
            euid: 990,
        };
        assert_eq!(
            acting_uid(service, Some(1001), Some(990)),
            1001,
            "the service account under sudo"
        );
        assert_eq!(
            acting_uid(service, Some(1001), Some(991)),
            990,
            "another account"
        );
        assert_eq!(name_of(0), "root");
        assert!(ids().is_some());
    }
}
