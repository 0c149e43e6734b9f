//! `[commands]`: which ad-hoc commands `run_command` may run as reads (no approval). A pattern
//! is words: a word matches itself; `*` matches any one word that is not an option (no leading
//! `-`) and not a path; `#` matches digits only; a word ending in `*` matches words with that
//! prefix and no further `/` or `..` (`/proc/pressure/*` is `/proc/pressure/cpu`, never a path
//! through `/proc/self/root`); a last word `...` matches any further words. Anything that
//! matches no pattern is a `change` and goes through the approval gate.

use schemars::JsonSchema;
use serde::Deserialize;

use super::ConfigError;

/// Raw `[commands]`.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawCommands {
    /// Commands that only read, as patterns (`"cat /proc/*"`, `"journalctl -u * -n * --no-pager"`).
    /// Default: a small built-in set of reads (see README).
    pub read_only: Option<Vec<String>>,
}

/// The built-in read-only patterns: commands that cannot change a host with any of the words
/// they allow. (`journalctl` only with `-u UNIT -n N --no-pager`: its `--vacuum-*` and
/// `--rotate` delete logs.)
pub const DEFAULT_READ_ONLY: &[&str] = &[
    "cat /proc/loadavg",
    "cat /proc/meminfo",
    "cat /proc/uptime",
    "cat /proc/stat",
    "cat /proc/vmstat",
    "cat /proc/mounts",
    "cat /proc/pressure/*",
    "uptime",
    "df -h",
    "df -P",
    "free -m",
    "ss -tlnp",
    "ss -s",
    "ps aux",
    "systemctl status * --no-pager",
    "systemctl is-active *",
    "journalctl -u * -n # --no-pager",
    "ip addr",
    "ip route",
];

/// Validated `[commands]`.
#[derive(Debug, Clone)]
pub struct Commands {
    pub read_only: Vec<Vec<String>>,
}

impl Commands {
    /// Whether `argv` matches a read-only pattern.
    pub fn is_read_only(&self, argv: &[String]) -> bool {
        self.read_only.iter().any(|p| matches(p, argv))
    }
}

fn matches(pattern: &[String], argv: &[String]) -> bool {
    let rest = pattern.last().is_some_and(|w| w == "...");
    let words = if rest {
        &pattern[..pattern.len() - 1]
    } else {
        pattern
    };
    if argv.len() < words.len() || (!rest && argv.len() != words.len()) {
        return false;
    }
    words.iter().zip(argv).all(|(p, a)| {
        if p == "*" {
            !a.is_empty() && !a.starts_with('-') && !a.contains('/') && !a.contains("..")
        } else if p == "#" {
            !a.is_empty() && a.bytes().all(|b| b.is_ascii_digit())
        } else if let Some(prefix) = p.strip_suffix('*') {
            a.starts_with(prefix) && !a[prefix.len()..].contains('/') && !a.contains("..")
        } else {
            p == a
        }
    })
}

pub fn resolve(raw: RawCommands, file: &str) -> Result<Commands, ConfigError> {
    let patterns: Vec<String> = match raw.read_only {
        Some(v) => v,
        None => DEFAULT_READ_ONLY.iter().map(|s| s.to_string()).collect(),
    };
    let mut read_only = Vec::new();
    for (i, p) in patterns.iter().enumerate() {
        let words: Vec<String> = p.split_whitespace().map(String::from).collect();
        if words.is_empty() || words[0].contains('*') || words[0] == "..." {
            return Err(ConfigError {
                file: file.into(),
                field: format!("commands.read_only[{i}]"),
                message: "a pattern starts with the program's name (no wildcard)".into(),
            });
        }
        read_only.push(words);
    }
    Ok(Commands { read_only })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c() -> Commands {
        resolve(RawCommands::default(), "t").unwrap()
    }

    fn v(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn read_only_patterns_match_exactly_what_they_say() {
        let c = c();
        for ok in [
            "cat /proc/loadavg",
            "cat /proc/pressure/memory",
            "uptime",
            "journalctl -u nginx -n 50 --no-pager",
            "ss -tlnp",
        ] {
            assert!(c.is_read_only(&v(ok)), "{ok}");
        }
        for change in [
            "journalctl --vacuum-time=1s",
            "journalctl -u nginx -n 50 --no-pager --rotate",
            "cat /etc/shadow",
            "cat /proc/self/root/etc/shadow",
            "cat /proc/1/environ",
            "cat /proc/pressure/../../etc/shadow",
            "journalctl -u nginx -n --cursor-file=/var/lib/x --no-pager",
            "journalctl -u -x -n 5 --no-pager",
            "systemctl status --now --no-pager",
            "cat /proc/../etc/shadow",
            "cat /proc/1/environ /etc/shadow",
            "systemctl restart nginx",
            "uptime now",
            "rm -rf /",
        ] {
            assert!(!c.is_read_only(&v(change)), "{change}");
        }
        let custom = resolve(
            RawCommands {
                read_only: Some(vec!["ls ...".into()]),
            },
            "t",
        )
        .unwrap();
        assert!(custom.is_read_only(&v("ls -la /var/log")));
        let e = resolve(
            RawCommands {
                read_only: Some(vec!["* ...".into()]),
            },
            "t",
        )
        .unwrap_err();
        assert_eq!(e.field, "commands.read_only[0]");
    }
}
