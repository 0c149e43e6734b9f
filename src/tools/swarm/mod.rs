//! Docker Swarm: the runbook's `docker service` actions (P0 options C and D, P1 step 2). The
//! real `docker` CLI runs on this server, argv only, with `-H [swarm] docker_host`; these
//! actions target a Swarm service, not inventory hosts, so they have no `hosts` argument.
//! Every one reads the service back after its command and reports what it wants and runs now.

pub mod cli;
mod memory;
mod rollback;
mod scale;

pub use memory::SetMemoryLimit;
pub use rollback::RollbackDeployment;
pub use scale::ScaleService;
