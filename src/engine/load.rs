//! The `load` step: the runbook's light load test (`ab -n 100 -c 10`) done by the engine
//! itself, so the API key stays in this server (ab would need it on its command line, where
//! `ps` shows it) and the bound is part of the sealed plan.

use std::time::Instant;

use futures::StreamExt;

use super::executor::Executor;

/// No request starts after this: a dead endpoint costs this plus one request's timeout, not
/// `requests` timeouts.
const DEADLINE: std::time::Duration = std::time::Duration::from_secs(60);

/// At most this share of failed requests passes (the runbook's test is "it holds", not "it
/// never drops one").
const MAX_FAILED: f64 = 0.01;

/// What a load test measured.
pub struct LoadResult {
    pub sent: u32,
    pub ok: u32,
    pub first_failure: Option<String>,
    /// Latencies in ms, sorted.
    pub ms: Vec<f64>,
    pub secs: f64,
}

impl LoadResult {
    pub fn passed(&self) -> bool {
        f64::from(self.sent - self.ok) <= MAX_FAILED * f64::from(self.sent)
    }

    pub fn line(&self) -> String {
        let q = |p: f64| crate::analyze::quantile(&self.ms, p);
        format!(
            "{} of {} 2xx; p50 {:.1} ms, p95 {:.1} ms, p99 {:.1} ms, max {:.1} ms; {:.0} req/s{}",
            self.ok,
            self.sent,
            q(0.5),
            q(0.95),
            q(0.99),
            self.ms.last().copied().unwrap_or(0.0),
            f64::from(self.sent) / self.secs.max(1e-9),
            self.first_failure
                .as_ref()
                .map(|f| format!("; first failure: {f}"))
                .unwrap_or_default()
        )
    }
}

pub async fn run(
    exec: &dyn Executor,
    url: &str,
    key: Option<&str>,
    requests: u32,
    concurrency: u32,
) -> LoadResult {
    let started = Instant::now();
    let results: Vec<(f64, Result<u16, String>)> = futures::stream::iter(0..requests)
        .map(|_| async move {
            if started.elapsed() > DEADLINE {
                return (
                    0.0,
                    Err(format!(
                        "not sent: the test's {}s deadline passed",
                        DEADLINE.as_secs()
                    )),
                );
            }
            let t = Instant::now();
            let r = exec.get(url, key).await;
            let ms = t.elapsed().as_secs_f64() * 1000.0;
            (ms, r.map(|r| r.status).map_err(|e| e.to_string()))
        })
        .buffer_unordered(concurrency.max(1) as usize)
        .collect()
        .await;
    let mut ms: Vec<f64> = results.iter().map(|r| r.0).collect();
    ms.sort_by(f64::total_cmp);
    let ok = results
        .iter()
        .filter(|r| matches!(r.1, Ok(s) if (200..300).contains(&s)))
        .count() as u32;
    let first_failure = results.iter().find_map(|r| match &r.1 {
        Ok(s) if (200..300).contains(s) => None,
        Ok(s) => Some(format!("HTTP {s}")),
        Err(e) => Some(e.clone()),
    });
    LoadResult {
        sent: requests,
        ok,
        first_failure,
        ms,
        secs: started.elapsed().as_secs_f64(),
    }
}
