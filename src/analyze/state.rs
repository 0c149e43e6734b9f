//! One service state for every service manager (systemd, supervisor, Docker Swarm), so tools
//! and findings reason about "is it serving?" without knowing which manager runs the service.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// What a service is doing, reduced from its manager's own states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ServiceState {
    /// Up: systemd `active`/`reloading`, supervisor `RUNNING`, every desired Swarm task running.
    Running,
    /// Deliberately not running: systemd `inactive`, supervisor `STOPPED`/`EXITED`, a Swarm
    /// service scaled to 0.
    Stopped,
    /// Crashed or gave up, possibly in a restart loop: systemd `failed` or
    /// `activating (auto-restart)`, supervisor `FATAL`/`BACKOFF`, no Swarm task running.
    Failed,
    /// The manager does not know the service (systemd `LoadState=not-found`, supervisor
    /// `no such process`).
    NotFound,
    /// In transition: systemd `activating`/`deactivating`, supervisor `STARTING`/`STOPPING`.
    Activating,
    /// Some but not all desired Swarm tasks are running.
    Degraded,
    /// The output did not say (a property missing, a state this code does not know).
    Unknown,
}

impl ServiceState {
    /// True only for [`ServiceState::Running`]: the one state in which the service serves.
    pub fn is_up(self) -> bool {
        self == Self::Running
    }
}
