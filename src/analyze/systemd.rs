//! `systemctl show` and `systemctl is-active`, read as data.
//!
//! Why `show` and not `status`: `status` is prose for people, changes between versions and is
//! localized; `show` prints stable `Key=Value` lines (run it under `LC_ALL=C` so timestamps are
//! not localized either). Several units print one block each, separated by a blank line, in the
//! order they were named on the command line.
//!
//! Quirks this parser is built around (each one seen in a capture under `fixtures/`):
//! - real systemd prints the requested properties in its own order, not the requested one;
//! - unset values read `[not set]`, `[no data]`, an empty string, `n/a` (older versions) or
//!   `18446744073709551615` (`MemoryCurrent` without accounting on old versions);
//! - `MainPID=0` means "no main process";
//! - an unknown unit still gets a block, with `LoadState=not-found` (and exit status 0);
//! - the lab's daemonless `systemctl` (docker-systemctl-replacement 1.4) honours only **one**
//!   `-p` property and prints nothing at all for a comma-separated list; without `-p` it prints
//!   a short fixed set (`Id`, `MainPID`, `SubState`, `ActiveState`, `LoadState`,
//!   `UnitFileState`, ...). A block count that does not match the units asked for is therefore
//!   reported as an error, never as "no units".

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{ParseError, ServiceState};

/// The properties [`parse_show`] reads, as one `-p` argument for `systemctl show`.
pub const SHOW_PROPERTIES: &str = "Id,LoadState,ActiveState,SubState,MainPID,\
ExecMainStartTimestamp,ActiveEnterTimestamp,NRestarts,Result,MemoryCurrent,UnitFileState";

const INPUT: &str = "systemctl show";

/// One unit, as `systemctl show` described it.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct UnitStatus {
    /// The unit as it was asked for (the name in the configuration).
    pub unit: String,
    /// systemd's own name for the unit (`Id`), e.g. `nginx.service`; absent when not printed.
    pub id: Option<String>,
    /// Summary state: running, stopped, failed, not_found, activating, or unknown.
    pub state: ServiceState,
    /// `LoadState`: whether the unit file was found and loaded (`loaded`, `not-found`,
    /// `masked`, `bad-setting`, `error`).
    pub load_state: Option<String>,
    /// `ActiveState`: `active`, `reloading`, `inactive`, `failed`, `activating`, `deactivating`.
    pub active_state: Option<String>,
    /// `SubState`: the unit-type specific state, e.g. `running`, `dead`, `exited`,
    /// `auto-restart`.
    pub sub_state: Option<String>,
    /// `MainPID`: the main process id; absent when there is none (systemd prints 0).
    pub main_pid: Option<u32>,
    /// `ExecMainStartTimestamp`: when the main process was last started, as systemd prints it
    /// (e.g. `Tue 2020-05-05 11:07:40 CEST`); absent when it never started.
    pub started_at: Option<String>,
    /// `ActiveEnterTimestamp`: when the unit last became active; absent when it never did.
    pub active_since: Option<String>,
    /// `NRestarts`: automatic restarts since the unit was last started by hand; absent when
    /// systemd does not track it (not a service, or too old a systemd).
    pub restarts: Option<u32>,
    /// `Result`: how the last run ended (`success`, `exit-code`, `signal`, `timeout`,
    /// `core-dump`, `watchdog`, `start-limit-hit`, ...).
    pub result: Option<String>,
    /// `MemoryCurrent`: memory used by the unit's cgroup, in bytes; absent without memory
    /// accounting or when the unit is not running.
    pub memory_bytes: Option<u64>,
    /// `UnitFileState`: `enabled`, `disabled`, `static`, `masked`, ...; absent when empty.
    pub unit_file_state: Option<String>,
}

/// One line of `systemctl is-active UNIT...`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct ActiveCheck {
    /// The unit as it was asked for.
    pub unit: String,
    /// The word systemctl printed (`active`, `inactive`, `failed`, `activating`, `unknown`, ...).
    pub raw: String,
    /// Summary state. `is-active` cannot tell a missing unit from a stopped one (real systemd
    /// prints `inactive` for both), so not_found never comes from here.
    pub state: ServiceState,
}

/// Parse `systemctl show -p ... UNIT...` output for the units in `requested`, in order.
///
/// Properties not printed stay `None`. A block without `Id` takes its unit name from
/// `requested` alone. Fails on a line that is not `Key=Value`, on a number that is not a
/// number (and not one of systemd's "unset" spellings), and when the number of blocks differs
/// from the number of units asked for.
pub fn parse_show(output: &str, requested: &[&str]) -> Result<Vec<UnitStatus>, ParseError> {
    let blocks = split_blocks(output)?;
    if blocks.len() != requested.len() {
        return Err(ParseError::document(
            INPUT,
            format!(
                "{} unit block(s) for {} unit(s) asked for; a systemctl that ignores a \
                 comma-separated -p list prints none",
                blocks.len(),
                requested.len()
            ),
        ));
    }
    blocks
        .into_iter()
        .zip(requested)
        .map(|(block, unit)| unit_status(unit, &block))
        .collect()
}

/// Parse `systemctl is-active UNIT...` output: one word per requested unit, in order.
pub fn parse_is_active(output: &str, requested: &[&str]) -> Result<Vec<ActiveCheck>, ParseError> {
    const INPUT: &str = "systemctl is-active";
    let words: Vec<&str> = output
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    if words.len() != requested.len() {
        return Err(ParseError::document(
            INPUT,
            format!("{} line(s) for {} unit(s)", words.len(), requested.len()),
        ));
    }
    Ok(words
        .into_iter()
        .zip(requested)
        .map(|(word, unit)| ActiveCheck {
            unit: (*unit).to_string(),
            raw: word.to_string(),
            state: decide_state(None, Some(word), None),
        })
        .collect())
}

/// Reduce systemd's three state properties to a [`ServiceState`].
///
/// The active state decides first: a unit whose file was deleted while it runs reads
/// `LoadState=not-found` yet `ActiveState=active`, and it is running. `activating` with
/// `SubState=auto-restart` is a crash loop waiting for its next try, so it is failed, not
/// starting.
pub fn decide_state(
    load_state: Option<&str>,
    active_state: Option<&str>,
    sub_state: Option<&str>,
) -> ServiceState {
    match active_state {
        Some("active" | "reloading") => ServiceState::Running,
        Some("failed") => ServiceState::Failed,
        // `auto-restart-queued` is systemd 254's second step of the same wait.
        Some("activating") if sub_state.is_some_and(|s| s.starts_with("auto-restart")) => {
            ServiceState::Failed
        }
        Some("activating" | "deactivating") => ServiceState::Activating,
        _ if load_state == Some("not-found") => ServiceState::NotFound,
        Some("inactive") => ServiceState::Stopped,
        _ => ServiceState::Unknown,
    }
}

/// A block: its `Key=Value` pairs with their 1-based line numbers.
type Block<'a> = Vec<(usize, &'a str, &'a str)>;

fn split_blocks(output: &str) -> Result<Vec<Block<'_>>, ParseError> {
    let mut blocks = Vec::new();
    let mut current: Block<'_> = Vec::new();
    for (index, line) in output.lines().enumerate() {
        if line.trim().is_empty() {
            if !current.is_empty() {
                blocks.push(std::mem::take(&mut current));
            }
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            return Err(ParseError::line(
                INPUT,
                index + 1,
                "expected Key=Value",
                line,
            ));
        };
        current.push((index + 1, key.trim(), value));
    }
    if !current.is_empty() {
        blocks.push(current);
    }
    Ok(blocks)
}

fn unit_status(unit: &str, block: &Block<'_>) -> Result<UnitStatus, ParseError> {
    let text = |key: &str| {
        block
            .iter()
            .find(|(_, k, _)| *k == key)
            .map(|(_, _, v)| *v)
            .filter(|v| !is_unset(v))
            .map(str::to_string)
    };
    let load_state = text("LoadState");
    let active_state = text("ActiveState");
    let sub_state = text("SubState");
    Ok(UnitStatus {
        unit: unit.to_string(),
        id: text("Id"),
        state: decide_state(
            load_state.as_deref(),
            active_state.as_deref(),
            sub_state.as_deref(),
        ),
        main_pid: number::<u32>(block, "MainPID")?.filter(|pid| *pid != 0),
        started_at: text("ExecMainStartTimestamp"),
        active_since: text("ActiveEnterTimestamp"),
        restarts: number(block, "NRestarts")?,
        result: text("Result"),
        // u64::MAX is how older systemd spelled "no memory accounting".
        memory_bytes: number::<u64>(block, "MemoryCurrent")?.filter(|b| *b != u64::MAX),
        unit_file_state: text("UnitFileState"),
        load_state,
        active_state,
        sub_state,
    })
}

fn number<T: std::str::FromStr>(
    block: &Block<'_>,
    key: &'static str,
) -> Result<Option<T>, ParseError> {
    match block.iter().find(|(_, k, _)| *k == key) {
        None => Ok(None),
        Some((_, _, value)) if is_unset(value) => Ok(None),
        Some((line, _, value)) => super::error::number(INPUT, *line, key, value.trim()).map(Some),
    }
}

/// systemd's spellings of "no value".
fn is_unset(value: &str) -> bool {
    matches!(value.trim(), "" | "[not set]" | "[no data]" | "n/a")
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROCKY_RUNNING: &str = include_str!("fixtures/systemd_rocky9_active_running.txt");
    const ROCKY_FAILED: &str = include_str!("fixtures/systemd_rocky9_failed.txt");
    const ROCKY_NOT_FOUND: &str = include_str!("fixtures/systemd_rocky9_not_found.txt");
    const ROCKY_MASKED: &str = include_str!("fixtures/systemd_rocky9_masked.txt");
    const DDCLIENT: &str = include_str!("fixtures/systemd_issue15772_ddclient_active.txt");
    const SSH_FAILED: &str = include_str!("fixtures/systemd_issue11869_ssh_failed.txt");
    const LAB_SHOW: &str = include_str!("fixtures/sysctl_replacement_show_all.txt");
    const LAB_SHOW_P_LIST: &str = include_str!("fixtures/sysctl_replacement_show_p_list.txt");
    const LAB_IS_ACTIVE: &str = include_str!("fixtures/sysctl_replacement_is_active.txt");

    fn one(output: &str) -> UnitStatus {
        let mut units = parse_show(output, &["x.service"]).unwrap();
        assert_eq!(units.len(), 1);
        units.remove(0)
    }

    #[test]
    fn real_systemd_running_failed_not_found_and_masked() {
        let running = one(ROCKY_RUNNING);
        assert_eq!(running.state, ServiceState::Running);
        assert_eq!(running.sub_state.as_deref(), Some("running"));
        assert_eq!(running.unit_file_state.as_deref(), Some("enabled"));
        assert_eq!(running.id, None, "this capture did not ask for Id");
        assert_eq!(running.unit, "x.service");

        let failed = one(ROCKY_FAILED);
        assert_eq!(failed.state, ServiceState::Failed);
        assert_eq!(failed.unit_file_state.as_deref(), Some("disabled"));

        let missing = one(ROCKY_NOT_FOUND);
        assert_eq!(missing.state, ServiceState::NotFound);
        assert_eq!(missing.load_state.as_deref(), Some("not-found"));
        assert_eq!(missing.unit_file_state, None, "UnitFileState= is empty");

        let masked = one(ROCKY_MASKED);
        assert_eq!(masked.state, ServiceState::Stopped);
        assert_eq!(masked.load_state.as_deref(), Some("masked"));
    }

    #[test]
    fn real_full_show_of_an_active_unit_reads_pid_start_and_unset_memory() {
        let unit = one(DDCLIENT);
        assert_eq!(unit.main_pid, Some(473));
        assert_eq!(
            unit.started_at.as_deref(),
            Some("Tue 2020-05-05 11:07:40 CEST")
        );
        assert_eq!(unit.restarts, Some(0));
        assert_eq!(unit.result.as_deref(), Some("success"));
        assert_eq!(unit.memory_bytes, None, "MemoryCurrent=[not set]");
        // This excerpt stops before the Unit-interface properties, so the state is unknown.
        assert_eq!(unit.active_state, None);
        assert_eq!(unit.state, ServiceState::Unknown);
    }

    #[test]
    fn real_full_show_of_a_restart_looping_unit() {
        let unit = one(SSH_FAILED);
        assert_eq!(unit.main_pid, None, "MainPID=0 means no process");
        assert_eq!(unit.restarts, Some(5));
        assert_eq!(unit.result.as_deref(), Some("exit-code"));
        assert_eq!(unit.started_at, None, "never printed");
    }

    #[test]
    fn lab_systemctl_blocks_map_to_requested_units_in_order() {
        let units = parse_show(
            LAB_SHOW,
            &[
                "cctelegram-mcp",
                "cctelegram-bridge",
                "broken",
                "nosuch.service",
            ],
        )
        .unwrap();
        let summary: Vec<_> = units
            .iter()
            .map(|u| (u.unit.as_str(), u.id.as_deref(), u.state, u.main_pid))
            .collect();
        assert_eq!(
            summary,
            vec![
                (
                    "cctelegram-mcp",
                    Some("cctelegram-mcp.service"),
                    ServiceState::Running,
                    Some(8017)
                ),
                (
                    "cctelegram-bridge",
                    Some("cctelegram-bridge.service"),
                    ServiceState::Stopped,
                    None
                ),
                ("broken", Some("broken.service"), ServiceState::Failed, None),
                (
                    "nosuch.service",
                    Some("nosuch.service"),
                    ServiceState::NotFound,
                    None
                ),
            ]
        );
        // The replacement does not print these at all.
        assert_eq!(units[0].restarts, None);
        assert_eq!(units[0].memory_bytes, None);
    }

    #[test]
    fn lab_systemctl_ignoring_a_property_list_is_an_error_not_zero_units() {
        assert!(LAB_SHOW_P_LIST.is_empty());
        let err = parse_show(LAB_SHOW_P_LIST, &["cctelegram-mcp"]).unwrap_err();
        assert!(
            err.to_string().contains("0 unit block(s) for 1 unit(s)"),
            "{err}"
        );
    }

    #[test]
    fn is_active_lines_from_the_lab() {
        let checks = parse_is_active(
            LAB_IS_ACTIVE,
            &["cctelegram-mcp", "cctelegram-bridge", "broken", "nosuch"],
        )
        .unwrap();
        let states: Vec<_> = checks.iter().map(|c| (c.raw.as_str(), c.state)).collect();
        assert_eq!(
            states,
            vec![
                ("active", ServiceState::Running),
                ("unknown", ServiceState::Unknown),
                ("failed", ServiceState::Failed),
                ("unknown", ServiceState::Unknown),
            ]
        );
        assert!(parse_is_active(LAB_IS_ACTIVE, &["one"]).is_err());
    }

    #[test]
    fn state_rules() {
        use ServiceState::*;
        let cases = [
            (Some("not-found"), Some("active"), Some("running"), Running),
            (
                Some("loaded"),
                Some("activating"),
                Some("auto-restart"),
                Failed,
            ),
            (
                Some("loaded"),
                Some("activating"),
                Some("start-pre"),
                Activating,
            ),
            (
                Some("loaded"),
                Some("deactivating"),
                Some("stop-sigterm"),
                Activating,
            ),
            (Some("loaded"), Some("reloading"), Some("reload"), Running),
            (Some("loaded"), Some("maintenance"), None, Unknown),
            (None, None, None, Unknown),
        ];
        for (load, active, sub, want) in cases {
            assert_eq!(
                decide_state(load, active, sub),
                want,
                "{load:?} {active:?} {sub:?}"
            );
        }
    }

    #[test]
    fn malformed_input_is_an_error_naming_the_line() {
        let err = parse_show("Id=a.service\nthis is not a property\n", &["a"]).unwrap_err();
        assert!(matches!(err, ParseError::Line { line: 2, .. }), "{err}");
        let err = parse_show("Id=a.service\nMainPID=abc\n", &["a"]).unwrap_err();
        assert!(
            matches!(
                err,
                ParseError::Field {
                    line: 2,
                    field: "MainPID",
                    ..
                }
            ),
            "{err}"
        );
        // The old "no accounting" sentinel and "n/a" are not errors.
        let unit = one("MemoryCurrent=18446744073709551615\nExecMainStartTimestamp=n/a\n");
        assert_eq!((unit.memory_bytes, unit.started_at), (None, None));
        // Several blank lines between blocks are one separator.
        assert_eq!(
            parse_show("Id=a\n\n\n\nId=b\n\n", &["a", "b"])
                .unwrap()
                .len(),
            2
        );
    }
}
