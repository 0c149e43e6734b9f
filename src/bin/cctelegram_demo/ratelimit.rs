//! Per-client rate limiting, so the runbook's "429 storm" checks have something to find.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

use crate::lock;

/// More requests than this from one client IP within one second get 429.
pub(crate) const RATE_LIMIT_PER_SEC: u32 = 50;

/// Fixed one-second windows per client IP.
#[derive(Default)]
pub(crate) struct RateLimiter {
    /// client ip -> (second since start, requests in that second)
    windows: Mutex<HashMap<IpAddr, (u64, u32)>>,
}

impl RateLimiter {
    /// Counts one request from `ip` in window `second`; true once it is over the limit.
    pub(crate) fn over_limit(&self, ip: IpAddr, second: u64) -> bool {
        let mut map = lock(&self.windows);
        // Bounds memory under many distinct clients: stale windows are dropped in bulk.
        if map.len() > 10_000 {
            map.retain(|_, (s, _)| *s == second);
        }
        let entry = map.entry(ip).or_insert((second, 0));
        if entry.0 != second {
            *entry = (second, 0);
        }
        entry.1 = entry.1.saturating_add(1);
        entry.1 > RATE_LIMIT_PER_SEC
    }
}
