//! ELBv2 target groups and target health from the `aws` CLI's `--output json`:
//! `aws elbv2 describe-target-health` (`{"TargetHealthDescriptions": [...]}`) and
//! `aws elbv2 describe-target-groups` / `modify-target-group` (`{"TargetGroups": [...]}`).
//!
//! The CLI prints the API's own objects, PascalCase, fields absent when unset (`Reason` and
//! `Description` are absent for a healthy target; `HealthCheckPath` for TCP groups). Unknown
//! fields are ignored; an unknown target state reads as `unknown` rather than failing, since
//! AWS adds states (`unhealthy.draining` came later).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::ParseError;

/// The state of one target, as ELBv2 reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum TargetState {
    /// Registering, or the first health checks are still running.
    Initial,
    /// Passing health checks: receives traffic.
    Healthy,
    /// Failing health checks.
    Unhealthy,
    /// Failing health checks and being deregistered.
    #[serde(rename = "unhealthy.draining")]
    UnhealthyDraining,
    /// Not registered, or the target group serves no load balancer.
    Unused,
    /// Being deregistered: finishing in-flight requests, no new ones.
    Draining,
    /// Health checks are disabled.
    Unavailable,
    /// A state this parser does not know.
    #[serde(other)]
    Unknown,
}

/// Whether a target with this state and reason is (still) in the target group: not when it is
/// being deregistered (`draining`) or AWS says `Target.NotRegistered`. A registered target can
/// read `unused` for other reasons (a stopped instance: `Target.InvalidState`; a group no load
/// balancer uses: `Target.NotInUse`).
pub fn is_registered(state: TargetState, reason: Option<&str>) -> bool {
    match state {
        TargetState::Draining | TargetState::UnhealthyDraining => false,
        TargetState::Unused => reason != Some("Target.NotRegistered"),
        _ => true,
    }
}

impl TargetState {
    pub fn as_str(self) -> &'static str {
        match self {
            TargetState::Initial => "initial",
            TargetState::Healthy => "healthy",
            TargetState::Unhealthy => "unhealthy",
            TargetState::UnhealthyDraining => "unhealthy.draining",
            TargetState::Unused => "unused",
            TargetState::Draining => "draining",
            TargetState::Unavailable => "unavailable",
            TargetState::Unknown => "unknown",
        }
    }
}

/// One target of a target group and its health.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct TargetHealth {
    /// Instance id, IP address or Lambda ARN.
    pub id: String,
    /// Port the target receives traffic on; absent for Lambda targets.
    pub port: Option<u16>,
    /// Health state.
    pub state: TargetState,
    /// Reason code, e.g. `Target.Timeout`, `Target.NotRegistered`; absent when healthy.
    pub reason: Option<String>,
    /// AWS's sentence about the state; absent when healthy.
    pub description: Option<String>,
}

/// How a target group checks its targets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct HealthCheck {
    /// Whether health checks run at all.
    pub enabled: Option<bool>,
    /// `HTTP`, `HTTPS`, `TCP`, ...
    pub protocol: Option<String>,
    /// Port checked, or `traffic-port` (the target's own).
    pub port: Option<String>,
    /// Path requested (HTTP/HTTPS only).
    pub path: Option<String>,
    /// Seconds between checks of one target.
    pub interval_seconds: Option<u32>,
    /// Seconds without an answer that count as a failed check.
    pub timeout_seconds: Option<u32>,
    /// Consecutive successes before an unhealthy target is healthy.
    pub healthy_threshold: Option<u32>,
    /// Consecutive failures before a healthy target is unhealthy.
    pub unhealthy_threshold: Option<u32>,
    /// HTTP codes that count as healthy, e.g. `200` or `200-399`.
    pub matcher: Option<String>,
}

/// A target group.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct TargetGroup {
    /// Its ARN.
    pub arn: String,
    /// Its name.
    pub name: String,
    /// Traffic protocol (`HTTP`, `HTTPS`, `TCP`, ...).
    pub protocol: Option<String>,
    /// Default port of its targets.
    pub port: Option<u16>,
    /// `instance`, `ip`, `lambda` or `alb`.
    pub target_type: Option<String>,
    /// Load balancers that send it traffic.
    pub load_balancer_arns: Vec<String>,
    /// Its health check.
    pub health_check: HealthCheck,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RawHealthOutput {
    target_health_descriptions: Vec<RawDescription>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RawDescription {
    target: RawTarget,
    target_health: Option<RawHealth>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RawTarget {
    id: String,
    port: Option<u16>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RawHealth {
    state: Option<TargetState>,
    reason: Option<String>,
    description: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RawGroupsOutput {
    target_groups: Vec<RawGroup>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RawGroup {
    target_group_arn: String,
    target_group_name: String,
    protocol: Option<String>,
    port: Option<u16>,
    target_type: Option<String>,
    #[serde(default)]
    load_balancer_arns: Vec<String>,
    health_check_enabled: Option<bool>,
    health_check_protocol: Option<String>,
    health_check_port: Option<String>,
    health_check_path: Option<String>,
    health_check_interval_seconds: Option<u32>,
    health_check_timeout_seconds: Option<u32>,
    healthy_threshold_count: Option<u32>,
    unhealthy_threshold_count: Option<u32>,
    matcher: Option<RawMatcher>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RawMatcher {
    http_code: Option<String>,
    grpc_code: Option<String>,
}

/// `aws elbv2 describe-target-health --output json`.
pub fn parse_target_health(json: &str) -> Result<Vec<TargetHealth>, ParseError> {
    const INPUT: &str = "aws elbv2 describe-target-health";
    if json.trim().is_empty() {
        return Err(ParseError::Empty { input: INPUT });
    }
    let raw: RawHealthOutput = serde_json::from_str(json)
        .map_err(|e| ParseError::document(INPUT, format!("unexpected JSON: {e}")))?;
    Ok(raw
        .target_health_descriptions
        .into_iter()
        .map(|d| {
            let h = d.target_health.unwrap_or(RawHealth {
                state: None,
                reason: None,
                description: None,
            });
            TargetHealth {
                id: d.target.id,
                port: d.target.port,
                state: h.state.unwrap_or(TargetState::Unknown),
                reason: h.reason,
                description: h.description,
            }
        })
        .collect())
}

/// `aws elbv2 describe-target-groups --output json`, and `modify-target-group`'s answer.
pub fn parse_target_groups(json: &str) -> Result<Vec<TargetGroup>, ParseError> {
    const INPUT: &str = "aws elbv2 describe-target-groups";
    if json.trim().is_empty() {
        return Err(ParseError::Empty { input: INPUT });
    }
    let raw: RawGroupsOutput = serde_json::from_str(json)
        .map_err(|e| ParseError::document(INPUT, format!("unexpected JSON: {e}")))?;
    Ok(raw
        .target_groups
        .into_iter()
        .map(|g| TargetGroup {
            arn: g.target_group_arn,
            name: g.target_group_name,
            protocol: g.protocol,
            port: g.port,
            target_type: g.target_type,
            load_balancer_arns: g.load_balancer_arns,
            health_check: HealthCheck {
                enabled: g.health_check_enabled,
                protocol: g.health_check_protocol,
                port: g.health_check_port,
                path: g.health_check_path,
                interval_seconds: g.health_check_interval_seconds,
                timeout_seconds: g.health_check_timeout_seconds,
                healthy_threshold: g.healthy_threshold_count,
                unhealthy_threshold: g.unhealthy_threshold_count,
                matcher: g.matcher.and_then(|m| m.http_code.or(m.grpc_code)),
            },
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEALTH: &str = include_str!("fixtures/elbv2_describe_target_health.json");
    const HEALTH_DOCS: &str = include_str!("fixtures/elbv2_describe_target_health_docs.json");
    const GROUPS: &str = include_str!("fixtures/elbv2_describe_target_groups.json");
    const MODIFY: &str = include_str!("fixtures/elbv2_modify_target_group.json");
    const MODIFY_DOCS: &str = include_str!("fixtures/elbv2_modify_target_group_docs.json");

    #[test]
    fn target_health_from_the_cli() {
        let t = parse_target_health(HEALTH).unwrap();
        assert_eq!(t.len(), 3);
        assert!(t.iter().all(|t| t.state == TargetState::Healthy
            && t.port == Some(8080)
            && t.reason.is_none()
            && t.id.starts_with("i-")));
    }

    #[test]
    fn every_documented_state_and_reason() {
        let t = parse_target_health(HEALTH_DOCS).unwrap();
        let states: Vec<_> = t.iter().map(|t| t.state).collect();
        assert_eq!(
            states,
            [
                TargetState::Healthy,
                TargetState::Unhealthy,
                TargetState::Initial,
                TargetState::Unused,
                TargetState::Unavailable
            ]
        );
        assert_eq!(t[1].reason.as_deref(), Some("Target.Timeout"));
        assert_eq!(
            t[1].description.as_deref(),
            Some("Connection to target timed out")
        );
        assert_eq!(t[4].port, None, "a Lambda target has no port");
        let reg = |t: &TargetHealth| is_registered(t.state, t.reason.as_deref());
        assert!(reg(&t[0]) && reg(&t[1]));
        assert!(
            reg(&t[3]),
            "unused because no load balancer uses the group: still registered"
        );
        assert!(!is_registered(
            TargetState::Unused,
            Some("Target.NotRegistered")
        ));
    }

    #[test]
    fn draining_and_states_aws_adds_later() {
        let json = r#"{"TargetHealthDescriptions": [
            {"Target": {"Id": "i-1", "Port": 80}, "TargetHealth": {"State": "draining",
             "Reason": "Target.DeregistrationInProgress"}},
            {"Target": {"Id": "i-2", "Port": 80}, "TargetHealth": {"State": "unhealthy.draining"}},
            {"Target": {"Id": "i-3", "Port": 80}, "TargetHealth": {"State": "hibernating"}},
            {"Target": {"Id": "i-4"}}
        ]}"#;
        let t = parse_target_health(json).unwrap();
        assert_eq!(t[0].state, TargetState::Draining);
        assert!(!is_registered(t[0].state, t[0].reason.as_deref()));
        assert_eq!(t[1].state, TargetState::UnhealthyDraining);
        assert_eq!(t[2].state, TargetState::Unknown);
        assert_eq!(t[3].state, TargetState::Unknown);
        assert_eq!(
            serde_json::to_value(TargetState::UnhealthyDraining).unwrap(),
            "unhealthy.draining"
        );
    }

    #[test]
    fn target_groups_from_the_cli_and_the_docs() {
        let g = parse_target_groups(GROUPS).unwrap();
        assert_eq!(g.len(), 1);
        assert_eq!(g[0].name, "cctelegram-tg");
        assert_eq!(g[0].port, Some(8080));
        let hc = &g[0].health_check;
        assert_eq!(hc.path.as_deref(), Some("/health"));
        assert_eq!(
            (hc.interval_seconds, hc.timeout_seconds),
            (Some(30), Some(5))
        );
        assert_eq!(hc.matcher.as_deref(), Some("200"));
        assert_eq!(
            parse_target_groups(MODIFY).unwrap()[0].name,
            "cctelegram-tg"
        );

        let d = &parse_target_groups(MODIFY_DOCS).unwrap()[0];
        assert_eq!(d.health_check.protocol.as_deref(), Some("HTTPS"));
        assert_eq!(d.health_check.path, None, "absent in the docs' example");
        assert_eq!(d.health_check.matcher.as_deref(), Some("200,299"));
        assert_eq!(d.load_balancer_arns.len(), 1);
    }

    #[test]
    fn odd_input_is_an_error_not_a_panic() {
        assert!(matches!(
            parse_target_health("  \n"),
            Err(ParseError::Empty { .. })
        ));
        let e = parse_target_health("{\"TargetGroups\": []}").unwrap_err();
        assert!(e.to_string().contains("TargetHealthDescriptions"), "{e}");
        assert!(parse_target_groups("[1, 2]").is_err());
        assert!(parse_target_groups("{\"TargetGroups\": [{}]}").is_err());
    }
}
