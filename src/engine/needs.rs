//! What a tool needs from the configuration. A tool whose needs are not met is not offered
//! (DESIGN §9): a model shown `check_database` on a fleet without a database wastes a call and
//! the reader's attention. `runbook-mcp tools --all` lists the rest with what each lacks.

use crate::config::{Config, Role};

/// One thing the configuration must have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// `[prometheus] url`.
    Prometheus,
    /// `[prometheus] rules_file`: where alerting rules are installed.
    RulesFile,
    /// `[database]`.
    Database,
    /// `[swarm]`.
    Swarm,
    /// `[aws]` (the target group the load-balancer changes act on).
    Aws,
    /// `[load_balancer]` or `[aws]`.
    LoadBalancer,
    /// At least one service.
    Services,
    /// A service with a `health_url`.
    HealthUrl,
    /// A service with `logs.application` or `logs.security`.
    Logs,
    /// A service with `role = "bridge"`.
    Bridge,
    /// A service with `role = "proxy"`.
    Proxy,
    /// A service with a `rate_limit_file`.
    RateLimitFile,
    /// `[notify.slack]`.
    Slack,
    /// `[notify.pagerduty]`.
    PagerDuty,
    /// `[notify.statuspage]`.
    Statuspage,
    /// `[notify.telegram]`.
    Telegram,
}

impl Need {
    /// What the configuration lacks, or `None` when it has it.
    pub fn lacking(self, c: &Config) -> Option<&'static str> {
        let any = |f: &dyn Fn(&crate::config::Service) -> bool| c.services.iter().any(f);
        let met = match self {
            Need::Prometheus => c.prometheus.is_some(),
            Need::RulesFile => c.prometheus.as_ref().is_some_and(|p| p.rules.is_some()),
            Need::Database => c.database.is_some(),
            Need::Swarm => c.swarm.is_some(),
            Need::Aws => c.aws.is_some(),
            Need::LoadBalancer => c.load_balancer.is_some() || c.aws.is_some(),
            Need::Services => !c.services.is_empty(),
            Need::HealthUrl => any(&|s| s.health_url.is_some()),
            Need::Logs => any(&|s| !s.logs.is_empty()),
            Need::Bridge => any(&|s| s.role == Role::Bridge),
            Need::Proxy => any(&|s| s.role == Role::Proxy),
            Need::RateLimitFile => any(&|s| s.rate_limit_file.is_some()),
            Need::Slack => c.notify.slack.is_some(),
            Need::PagerDuty => c.notify.pagerduty.is_some(),
            Need::Statuspage => c.notify.statuspage.is_some(),
            Need::Telegram => c.notify.telegram.is_some(),
        };
        (!met).then_some(match self {
            Need::Prometheus => "no [prometheus] url",
            Need::RulesFile => "no [prometheus] rules_file",
            Need::Database => "no [database]",
            Need::Swarm => "no [swarm]",
            Need::Aws => "no [aws] target group",
            Need::LoadBalancer => "no [load_balancer] or [aws]",
            Need::Services => "no [services]",
            Need::HealthUrl => "no service with a health_url",
            Need::Logs => "no service with logs (logs.application / logs.security)",
            Need::Bridge => "no service with role = \"bridge\"",
            Need::Proxy => "no service with role = \"proxy\"",
            Need::RateLimitFile => "no service with a rate_limit_file",
            Need::Slack => "no [notify.slack]",
            Need::PagerDuty => "no [notify.pagerduty]",
            Need::Statuspage => "no [notify.statuspage]",
            Need::Telegram => "no [notify.telegram]",
        })
    }
}

/// Everything `needs` lacks in `c`, joined (`None` when the tool can run).
pub fn lacking(needs: &[Need], c: &Config) -> Option<String> {
    let missing: Vec<&str> = needs.iter().filter_map(|n| n.lacking(c)).collect();
    (!missing.is_empty()).then(|| missing.join("; "))
}
