//! Docker Swarm services and tasks from the CLI's JSON lines:
//! `docker service ls --format '{{json .}}'` and `docker service ps SERVICE --format '{{json .}}'`.
//!
//! The CLI renders these objects itself, so their fields are text: `Replicas` reads `3/3`,
//! `3/3 (max 1 per node)` or `1/1 (3/5 completed)` for jobs; a task's `CurrentState` reads
//! `Running 2 hours ago`; a task's `Error` carries its own quotes (`"task: non-zero exit (137)"`).
//! Fields the CLI may add later are ignored; missing ones read as empty.
//!
//! `docker service inspect SERVICE` prints the engine's own service objects as a JSON array;
//! [`parse_service_inspect`] keeps what the swarm tools report (version, mode, replicas, image,
//! memory limit, and the previous spec a rollback would restore).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{ParseError, ServiceState};

/// One Swarm service, from `docker service ls`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct SwarmService {
    /// Service id (short form).
    pub id: String,
    /// Service name, e.g. `cctelegram_mcp-server`.
    pub name: String,
    /// `replicated`, `global`, `replicated-job` or `global-job`.
    pub mode: String,
    /// Image, as the CLI shows it (digest removed).
    pub image: String,
    /// Published ports, e.g. `*:8080->8080/tcp`; empty when none.
    pub ports: String,
    /// Tasks running now; absent when `Replicas` could not be read.
    pub replicas_running: Option<u32>,
    /// Tasks the service wants; absent when `Replicas` could not be read.
    pub replicas_desired: Option<u32>,
    /// `Replicas` exactly as printed, e.g. `3/3 (max 1 per node)`.
    pub replicas_text: String,
    /// Summary: running when all desired tasks run, degraded when some do, failed when none
    /// do, stopped when scaled to 0, unknown when the counts are unreadable.
    pub state: ServiceState,
}

/// One task of a service, from `docker service ps`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct SwarmTask {
    /// Task id (short form).
    pub id: String,
    /// Task name, `SERVICE.SLOT` (older tasks of the same slot repeat the name).
    pub name: String,
    /// Image of this task.
    pub image: String,
    /// Node (host name) the task was scheduled on.
    pub node: String,
    /// What the orchestrator wants: `Running`, `Shutdown`, `Accepted`, ...
    pub desired_state: String,
    /// First word of the current state: `Running`, `Starting`, `Failed`, `Shutdown`,
    /// `Rejected`, `Pending`, `Complete`, ...
    pub current_state: String,
    /// The current state's age as printed, e.g. `2 hours ago`.
    pub current_since: String,
    /// Why the task failed, without the CLI's quotes; empty when it did not.
    pub error: String,
    /// Published ports of the task (host mode); empty when none.
    pub ports: String,
}

/// The CLI's JSON object for a service; field names as the CLI writes them.
#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct RawService {
    #[serde(rename = "ID")]
    id: String,
    name: String,
    mode: String,
    image: String,
    ports: String,
    replicas: String,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct RawTask {
    #[serde(rename = "ID")]
    id: String,
    name: String,
    image: String,
    node: String,
    desired_state: String,
    current_state: String,
    error: String,
    ports: String,
}

/// Parse `docker service ls --format '{{json .}}'` output, one service per line.
pub fn parse_service_ls(output: &str) -> Result<Vec<SwarmService>, ParseError> {
    json_lines::<RawService>("docker service ls", output)?
        .into_iter()
        .map(|raw| {
            let counts = replica_counts(&raw.replicas);
            Ok(SwarmService {
                state: counts.map_or(ServiceState::Unknown, |(r, d)| replica_state(r, d)),
                replicas_running: counts.map(|c| c.0),
                replicas_desired: counts.map(|c| c.1),
                replicas_text: raw.replicas,
                id: raw.id,
                name: raw.name,
                mode: raw.mode,
                image: raw.image,
                ports: raw.ports,
            })
        })
        .collect()
}

/// Parse `docker service ps SERVICE --format '{{json .}}'` output, one task per line.
pub fn parse_service_ps(output: &str) -> Result<Vec<SwarmTask>, ParseError> {
    Ok(json_lines::<RawTask>("docker service ps", output)?
        .into_iter()
        .map(|raw| {
            let (state, since) = match raw.current_state.split_once(' ') {
                Some((state, since)) => (state.to_string(), since.trim().to_string()),
                None => (raw.current_state.clone(), String::new()),
            };
            SwarmTask {
                id: raw.id,
                name: raw.name,
                image: raw.image,
                node: raw.node,
                desired_state: raw.desired_state,
                current_state: state,
                current_since: since,
                error: raw.error.trim_matches('"').to_string(),
                ports: raw.ports,
            }
        })
        .collect())
}

/// Reduce running/desired task counts to a [`ServiceState`].
pub fn replica_state(running: u32, desired: u32) -> ServiceState {
    match (running, desired) {
        (_, 0) => ServiceState::Stopped,
        (0, _) => ServiceState::Failed,
        (r, d) if r >= d => ServiceState::Running,
        _ => ServiceState::Degraded,
    }
}

/// `3/3`, `3/3 (max 1 per node)`, `1/1 (3/5 completed)` → (running, desired).
fn replica_counts(text: &str) -> Option<(u32, u32)> {
    let head = text.split_whitespace().next()?;
    let (running, desired) = head.split_once('/')?;
    Some((running.parse().ok()?, desired.parse().ok()?))
}

fn json_lines<T: serde::de::DeserializeOwned>(
    input: &'static str,
    output: &str,
) -> Result<Vec<T>, ParseError> {
    output
        .lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(index, line)| {
            serde_json::from_str(line).map_err(|e| {
                ParseError::line(input, index + 1, format!("not a JSON object: {e}"), line)
            })
        })
        .collect()
}

/// What a service spec sets, from `docker service inspect`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct SwarmSpec {
    /// `replicated`, `global`, `replicated-job` or `global-job`.
    pub mode: String,
    /// Replicas wanted (replicated services only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replicas: Option<u64>,
    /// Image as the spec names it (a digest pin included).
    pub image: String,
    /// Memory limit of each task in bytes; absent when there is none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory_limit_bytes: Option<i64>,
}

/// One service from `docker service inspect`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct SwarmServiceSpec {
    /// Full service id.
    pub id: String,
    pub name: String,
    /// The engine's version index of the service object (each update bumps it).
    pub version: u64,
    /// When the service object last changed (the engine's `UpdatedAt`, RFC 3339).
    pub updated_at: String,
    /// The spec in force.
    pub spec: SwarmSpec,
    /// The spec before the last update: what `docker service update --rollback` restores.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous: Option<SwarmSpec>,
    /// State of the last update or rollback (`updating`, `completed`, `paused`,
    /// `rollback_started`, `rollback_completed`, ...); empty when there was none.
    pub update_state: String,
    /// The engine's message about it, e.g. `update paused due to failure`.
    pub update_message: String,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct RawInspect {
    #[serde(rename = "ID")]
    id: String,
    version: RawVersion,
    spec: RawSpec,
    previous_spec: Option<RawSpec>,
    update_status: Option<RawUpdateStatus>,
    updated_at: String,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct RawVersion {
    index: u64,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct RawSpec {
    name: String,
    task_template: RawTaskTemplate,
    /// One key: `Replicated`, `Global`, `ReplicatedJob` or `GlobalJob`.
    mode: serde_json::Map<String, serde_json::Value>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct RawTaskTemplate {
    container_spec: RawContainerSpec,
    resources: RawResources,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct RawContainerSpec {
    image: String,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct RawResources {
    limits: RawLimits,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct RawLimits {
    memory_bytes: i64,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct RawUpdateStatus {
    state: String,
    message: String,
}

impl RawSpec {
    fn summary(&self) -> SwarmSpec {
        let (mode, replicas) = match self.mode.iter().next() {
            Some((k, v)) => (
                match k.as_str() {
                    "Replicated" => "replicated".to_string(),
                    "Global" => "global".to_string(),
                    "ReplicatedJob" => "replicated-job".to_string(),
                    "GlobalJob" => "global-job".to_string(),
                    other => other.to_lowercase(),
                },
                (k == "Replicated")
                    .then(|| v.get("Replicas").and_then(serde_json::Value::as_u64))
                    .flatten(),
            ),
            None => (String::new(), None),
        };
        let mem = self.task_template.resources.limits.memory_bytes;
        SwarmSpec {
            mode,
            replicas,
            image: self.task_template.container_spec.image.clone(),
            memory_limit_bytes: (mem != 0).then_some(mem),
        }
    }
}

/// Parse `docker service inspect SERVICE...` (its default JSON array output).
pub fn parse_service_inspect(output: &str) -> Result<Vec<SwarmServiceSpec>, ParseError> {
    const INPUT: &str = "docker service inspect";
    if output.trim().is_empty() {
        return Err(ParseError::Empty { input: INPUT });
    }
    let raw: Vec<RawInspect> = serde_json::from_str(output)
        .map_err(|e| ParseError::document(INPUT, format!("not a JSON array of services: {e}")))?;
    Ok(raw
        .into_iter()
        .map(|r| {
            let status = r.update_status.unwrap_or_default();
            SwarmServiceSpec {
                spec: r.spec.summary(),
                previous: r.previous_spec.as_ref().map(RawSpec::summary),
                name: r.spec.name,
                id: r.id,
                version: r.version.index,
                updated_at: r.updated_at,
                update_state: status.state,
                update_message: status.message,
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    const LS: &str = include_str!("fixtures/docker_service_ls.jsonl");
    const LS_DOCS: &str = include_str!("fixtures/docker_service_ls_docs.jsonl");
    const PS: &str = include_str!("fixtures/docker_service_ps.jsonl");
    const INSPECT: &str = include_str!("fixtures/docker_service_inspect.json");
    const INSPECT_DOCS: &str = include_str!("fixtures/docker_service_inspect_docs.json");

    #[test]
    fn inspect_reads_spec_limit_and_previous_spec() {
        let s = &parse_service_inspect(INSPECT).unwrap()[0];
        assert_eq!(s.name, "cctelegram_mcp-server");
        assert_eq!(s.id, "q7xkmw3v0f2bk3j4h5g6f7d8z");
        assert_eq!(s.version, 42);
        assert_eq!(
            s.spec,
            SwarmSpec {
                mode: "replicated".into(),
                replicas: Some(3),
                image: "cctelegram/mcp-server:1.4.2".into(),
                memory_limit_bytes: Some(2 << 30),
            }
        );
        let prev = s.previous.as_ref().unwrap();
        assert_eq!(
            prev.memory_limit_bytes, None,
            "the spec before `--limit-memory 2G`"
        );
        assert_eq!(s.update_state, "completed");

        let docs = &parse_service_inspect(INSPECT_DOCS).unwrap()[0];
        assert_eq!((docs.name.as_str(), docs.version), ("redis", 12));
        assert_eq!(docs.spec.replicas, Some(1));
        assert_eq!(docs.spec.image, "redis:7.4.1");
        assert_eq!(docs.spec.memory_limit_bytes, None, "`Limits: {{}}`");
        assert!(docs.previous.is_none() && docs.update_state.is_empty());
    }

    #[test]
    fn inspect_global_mode_and_errors() {
        let global = r#"[{"ID":"x","Spec":{"Name":"g","Mode":{"Global":{}}}}]"#;
        let s = &parse_service_inspect(global).unwrap()[0];
        assert_eq!((s.spec.mode.as_str(), s.spec.replicas), ("global", None));
        // `docker service inspect nosuch` prints `[]` and fails on stderr.
        assert!(parse_service_inspect("[]\n").unwrap().is_empty());
        assert!(matches!(
            parse_service_inspect(""),
            Err(ParseError::Empty { .. })
        ));
        assert!(parse_service_inspect("Error: no such service: x").is_err());
    }

    #[test]
    fn services_with_full_partial_none_and_capped_replicas() {
        let services = parse_service_ls(LS).unwrap();
        let summary: Vec<_> = services
            .iter()
            .map(|s| {
                (
                    s.name.as_str(),
                    s.replicas_running,
                    s.replicas_desired,
                    s.state,
                )
            })
            .collect();
        assert_eq!(
            summary,
            vec![
                (
                    "cctelegram_bridge",
                    Some(1),
                    Some(2),
                    ServiceState::Degraded
                ),
                (
                    "cctelegram_mcp-server",
                    Some(3),
                    Some(3),
                    ServiceState::Running
                ),
                (
                    "cctelegram_node-exporter",
                    Some(3),
                    Some(3),
                    ServiceState::Running
                ),
                (
                    "cctelegram_postgres",
                    Some(0),
                    Some(1),
                    ServiceState::Failed
                ),
            ]
        );
        let mcp = &services[1];
        assert_eq!(mcp.replicas_text, "3/3 (max 1 per node)");
        assert_eq!(mcp.ports, "*:8080->8080/tcp", "\\u003e decoded");
        assert_eq!(mcp.image, "ghcr.io/cctelegram/mcp-server:1.8.2");
        assert_eq!(services[2].mode, "global");
    }

    #[test]
    fn services_from_the_docker_docs() {
        let services = parse_service_ls(LS_DOCS).unwrap();
        assert_eq!(services.len(), 4);
        assert_eq!(services[0].name, "hello");
        assert_eq!(services[0].state, ServiceState::Failed);
        assert_eq!(services[2].state, ServiceState::Running);
        assert_eq!(services[1].ports, "*:4566->4566/tcp, *:8080->8080/tcp");
    }

    #[test]
    fn tasks_with_history_and_errors() {
        let tasks = parse_service_ps(PS).unwrap();
        assert_eq!(tasks.len(), 4);
        assert_eq!(tasks[0].current_state, "Running");
        assert_eq!(tasks[0].current_since, "2 hours ago");
        assert_eq!(tasks[0].node, "mcp-01");
        let failed = &tasks[2];
        assert_eq!(failed.desired_state, "Shutdown");
        assert_eq!(failed.current_state, "Failed");
        assert_eq!(failed.error, "task: non-zero exit (137)");
        assert_eq!(tasks[3].current_state, "Starting");
        assert!(tasks.iter().filter(|t| t.error.is_empty()).count() == 3);
    }

    #[test]
    fn replica_rules_and_odd_text() {
        assert_eq!(replica_counts("1/1 (3/5 completed)"), Some((1, 1)));
        assert_eq!(replica_counts("n/a"), None);
        assert_eq!(replica_counts(""), None);
        assert_eq!(replica_state(0, 0), ServiceState::Stopped);
        assert_eq!(
            replica_state(4, 3),
            ServiceState::Running,
            "during a rolling update"
        );
        let odd = parse_service_ls(r#"{"Name":"x","Replicas":"?"}"#).unwrap();
        assert_eq!(odd[0].state, ServiceState::Unknown);
    }

    #[test]
    fn a_line_that_is_not_json_is_an_error_with_its_number() {
        let input = format!(
            "{}\nError response from daemon: not a swarm manager\n",
            LS_DOCS.lines().next().unwrap()
        );
        let err = parse_service_ls(&input).unwrap_err();
        assert!(matches!(err, ParseError::Line { line: 2, .. }), "{err}");
        assert!(parse_service_ps("[1,2]").is_err());
    }
}
