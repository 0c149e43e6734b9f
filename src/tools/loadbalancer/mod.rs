//! Load balancer: the runbook's AWS target group actions ("Load Balancer Recovery", P0
//! option B). The real `aws` CLI runs on this server, argv only, against `[aws]`'s target
//! group; the drain and restore actions take an inventory host and act on its instance in the
//! group, so they have no `hosts` argument. Every mutating tool runs exactly the planned
//! command and reads the group back.

mod check;
mod cli;
mod group;
mod health_check;
mod targets;

pub use check::CheckLoadBalancer;
pub use group::{TargetGroupNow, read_with as read_target_group};
pub use health_check::UpdateHealthCheck;
pub use targets::{DrainInstance, RestoreInstance};
