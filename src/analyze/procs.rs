//! Process identity and small config reads the plans need: `ps -eo pid=,lstart=,args=` (a pid
//! together with its start time names one process, so a reused pid is never mistaken for it),
//! `MainPID=` of `systemctl show`, and the rate of an nginx `limit_req_zone`.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// One process: its pid and when it started (`ps` `lstart`, to the second).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ProcessId {
    pub pid: u32,
    /// Start time as `ps` prints `lstart` under `LC_ALL=C` (`Tue Dec  1 15:14:26 2026`,
    /// spaces collapsed).
    pub started: String,
}

/// Processes of `ps -eo pid=,lstart=,args=` whose executable's base name is `name` and, when
/// `args` is given, whose command line contains it. Matching the executable, not the whole
/// command line, so a `pgrep -f name` or a shell mentioning the name never matches.
pub fn processes(ps: &str, name: &str, args: Option<&str>) -> Vec<ProcessId> {
    ps.lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let pid: u32 = f.next()?.parse().ok()?;
            // lstart is five words: weekday, month, day, time, year.
            let started: Vec<&str> = f.by_ref().take(5).collect();
            if started.len() != 5 {
                return None;
            }
            let rest: Vec<&str> = f.collect();
            let base = rest.first()?.rsplit('/').next()?;
            let line = rest.join(" ");
            (base == name && args.is_none_or(|a| line.contains(a))).then(|| ProcessId {
                pid,
                started: started.join(" "),
            })
        })
        .collect()
}

/// `MainPID=N` of `systemctl show` output; `None` for 0 or when absent.
pub fn main_pid(show: &str) -> Option<u32> {
    show.lines()
        .find_map(|l| l.trim().strip_prefix("MainPID="))
        .and_then(|v| v.trim().parse().ok())
        .filter(|p| *p > 0)
}

/// The rate of `zone` in an nginx file (`limit_req_zone … zone=api:10m rate=30r/s;`).
pub fn nginx_rate(text: &str, zone: &str) -> Option<String> {
    text.lines().find_map(|l| {
        let l = l.split('#').next()?;
        let mut words = l.split_whitespace();
        if words.next()? != "limit_req_zone" {
            return None;
        }
        let words: Vec<&str> = words.collect();
        let named = words
            .iter()
            .any(|w| w.strip_prefix("zone=").and_then(|z| z.split(':').next()) == Some(zone));
        if !named {
            return None;
        }
        words.iter().find_map(|w| {
            let r = w.strip_prefix("rate=")?.trim_end_matches(';');
            let n = r.strip_suffix("r/s").or_else(|| r.strip_suffix("r/m"))?;
            (!n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())).then(|| r.to_string())
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn processes_are_named_by_executable_and_carry_their_start_time() {
        let ps = "  101 Tue Dec  1 15:14:26 2026 /opt/cctelegram/bin/cctelegram-bridge --role bridge\n  \
                  202 Tue Dec  1 15:20:01 2026 node /srv/bridge/index.js\n  \
                  303 Tue Dec  1 15:20:02 2026 /usr/bin/timeout 5 pgrep -f cctelegram-bridge\n  \
                  404 Tue Dec  1 15:20:03 2026 node /srv/other/app.js\n  \
                  505 Tue Dec  1 15:20:04 2026 bash -c cctelegram-bridge\n";
        assert_eq!(
            processes(ps, "cctelegram-bridge", None),
            vec![ProcessId {
                pid: 101,
                started: "Tue Dec 1 15:14:26 2026".into()
            }]
        );
        let node: Vec<u32> = processes(ps, "node", None).iter().map(|p| p.pid).collect();
        assert_eq!(node, vec![202, 404]);
        let bridge: Vec<u32> = processes(ps, "node", Some("bridge"))
            .iter()
            .map(|p| p.pid)
            .collect();
        assert_eq!(bridge, vec![202]);
        assert!(processes("garbage\n 12 Tue\n", "x", None).is_empty());
    }

    #[test]
    fn main_pid_and_rates() {
        assert_eq!(main_pid("Id=x\nMainPID=4242\nType=simple\n"), Some(4242));
        assert_eq!(main_pid("MainPID=0\n"), None);
        assert_eq!(main_pid(""), None);
        let text = "limit_req_zone $binary_remote_addr zone=api:1m rate=30r/s;\n\
                    limit_req_zone $binary_remote_addr zone=login:1m rate=600r/m;\n\
                    # limit_req_zone $x zone=old:1m rate=1r/s;\n";
        assert_eq!(nginx_rate(text, "api").as_deref(), Some("30r/s"));
        assert_eq!(nginx_rate(text, "login").as_deref(), Some("600r/m"));
        assert_eq!(nginx_rate(text, "old"), None);
        assert_eq!(nginx_rate(text, "other"), None);
    }
}
