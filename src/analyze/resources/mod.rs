//! Host resources: load, memory, uptime, CPUs, disks, top processes, listening sockets.
//!
//! These read `/proc` files and the output of `df`, `ps` and `ss` rather than `top` or `free`:
//! `top -bn1` spends 0.16 s sampling, and `/proc` is exact and instant (DESIGN §7).

mod df;
mod proc;
mod ps;
mod ss;

pub use df::{DiskUsage, parse_df};
pub use proc::{LoadAverage, MemoryUsage, parse_loadavg, parse_meminfo, parse_nproc, parse_uptime};
pub use ps::{PS_ARGV, ProcessInfo, parse_ps};
pub use ss::{ListeningSocket, SocketProcess, parse_ss_listening};
