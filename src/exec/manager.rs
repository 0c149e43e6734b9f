//! Service managers: the argv for each operation, per manager. Status is read from
//! machine-readable output (`systemctl show`, not `status` prose) and parsed in `analyze`.

use super::Cmd;
use crate::config::Manager;

/// An operation on a service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Start,
    Stop,
    Restart,
    Reload,
}

impl Op {
    fn verb(self) -> &'static str {
        match self {
            Op::Start => "start",
            Op::Stop => "stop",
            Op::Restart => "restart",
            Op::Reload => "reload",
        }
    }
}

/// Reads the state of `units` (one command for all of them where the manager allows).
pub fn status(manager: Manager, units: &[&str]) -> Cmd {
    match manager {
        Manager::Systemd => {
            // No `-p` list: the daemonless systemctl many containers use (the lab's too) prints
            // nothing for `-p A,B` and only the last of repeated `-p`s, while every
            // implementation prints all properties without it. The parser picks the ones it
            // needs; real systemd's full output is ~15 KB a unit, cheap over a warm connection.
            // Unit names are validated tokens that never start with `-`.
            let mut argv = vec!["systemctl", "show", "--no-pager"];
            argv.extend(units);
            Cmd::new(argv)
        }
        Manager::Supervisor => {
            let mut argv = vec!["supervisorctl", "status"];
            argv.extend(units);
            Cmd::new(argv).privileged()
        }
        Manager::Docker => {
            let mut argv: Vec<String> = ["docker", "service", "ls", "--format", "{{json .}}"]
                .map(String::from)
                .into();
            for u in units {
                argv.push("--filter".into());
                argv.push(format!("name={u}"));
            }
            Cmd::new(argv)
        }
    }
}

/// Changes the state of `unit`.
pub fn control(manager: Manager, op: Op, unit: &str) -> Cmd {
    let argv: Vec<String> = match manager {
        Manager::Systemd => vec!["systemctl".into(), op.verb().into(), unit.into()],
        Manager::Supervisor => {
            // supervisor has no reload of one program; a restart is the closest.
            let verb = if op == Op::Reload {
                "restart"
            } else {
                op.verb()
            };
            vec!["supervisorctl".into(), verb.into(), unit.into()]
        }
        Manager::Docker => match op {
            Op::Stop => vec![
                "docker".into(),
                "service".into(),
                "scale".into(),
                format!("{unit}=0"),
            ],
            _ => ["docker", "service", "update", "--force", unit]
                .map(String::from)
                .into(),
        },
    };
    Cmd::new(argv).privileged()
}

/// The manager's own log of `unit` (journal, supervisor tail, swarm logs).
pub fn logs(manager: Manager, unit: &str, lines: u32) -> Cmd {
    let n = lines.to_string();
    match manager {
        Manager::Systemd => {
            Cmd::new(["journalctl", "--no-pager", "-n", &n, "-u", unit]).privileged()
        }
        Manager::Supervisor => Cmd::new(["supervisorctl", "tail", unit]).privileged(),
        Manager::Docker => Cmd::new(["docker", "service", "logs", "--tail", &n, unit]),
    }
}
