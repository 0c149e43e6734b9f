//! HTTP from the server itself (reqwest): health checks, metrics, Prometheus. Secrets travel
//! only in headers of these requests — never on a remote command line, where `ps` would show
//! them.

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use super::ExecError;

/// One request.
#[derive(Debug, Clone)]
pub struct HttpRequest {
    pub method: reqwest::Method,
    pub url: String,
    /// Header name and value; values may be secrets and are never logged.
    pub headers: Vec<(String, String)>,
    /// A JSON body (sent with `Content-Type: application/json`).
    pub body: Option<Vec<u8>>,
    pub timeout: Duration,
}

impl HttpRequest {
    pub fn get(url: impl Into<String>, timeout: Duration) -> Self {
        Self {
            method: reqwest::Method::GET,
            url: url.into(),
            headers: Vec::new(),
            body: None,
            timeout,
        }
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }
}

/// A response, body capped.
#[derive(Debug, Clone)]
pub struct HttpReply {
    pub status: u16,
    /// `Retry-After` in seconds, when the server sent one (429, 503).
    pub retry_after: Option<u64>,
    pub body: String,
    pub truncated: bool,
    pub elapsed: Duration,
}

/// Shared client: connection pooling makes repeated checks of the same endpoint cheap.
/// Built on first use: loading the system's CA roots costs milliseconds that `initialize`
/// should not wait for.
#[derive(Clone)]
pub struct HttpClient {
    inner: Arc<OnceLock<reqwest::Client>>,
    cap: usize,
}

impl HttpClient {
    pub fn new(cap: usize) -> anyhow::Result<Self> {
        Ok(Self {
            inner: Arc::new(OnceLock::new()),
            cap,
        })
    }

    fn client(&self) -> Result<&reqwest::Client, ExecError> {
        if let Some(c) = self.inner.get() {
            return Ok(c);
        }
        let built = reqwest::Client::builder()
            .user_agent(concat!("runbook-mcp/", env!("CARGO_PKG_VERSION")))
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .build()
            .map_err(|e| ExecError::Failed(format!("HTTP client: {e}")))?;
        Ok(self.inner.get_or_init(|| built))
    }

    pub async fn send(&self, req: &HttpRequest) -> Result<HttpReply, ExecError> {
        let started = Instant::now();
        let client = self.client()?;
        let work = async {
            let mut b = client.request(req.method.clone(), &req.url);
            for (k, v) in &req.headers {
                b = b.header(k.as_str(), v.as_str());
            }
            if let Some(body) = &req.body {
                b = b
                    .header("Content-Type", "application/json; charset=utf-8")
                    .body(body.clone());
            }
            let mut resp = b.send().await?;
            let status = resp.status().as_u16();
            let retry_after = resp
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok());
            let mut body = Vec::new();
            let mut truncated = false;
            while let Some(chunk) = resp.chunk().await? {
                let room = self.cap.saturating_sub(body.len());
                if chunk.len() > room {
                    truncated = true;
                    body.extend_from_slice(&chunk[..room]);
                    break;
                }
                body.extend_from_slice(&chunk);
            }
            Ok::<_, reqwest::Error>((status, retry_after, body, truncated))
        };
        match tokio::time::timeout(req.timeout, work).await {
            Err(_) => Err(ExecError::TimedOut(req.timeout)),
            Ok(Err(e)) => Err(classify(e.without_url())),
            Ok(Ok((status, retry_after, body, truncated))) => Ok(HttpReply {
                status,
                retry_after,
                body: String::from_utf8_lossy(&body).into_owned(),
                truncated,
                elapsed: started.elapsed(),
            }),
        }
    }
}

/// The error without its URL: a URL may carry a secret (a bot token in the path).
fn classify(e: reqwest::Error) -> ExecError {
    // reqwest's Display of a connect error hides the cause ("error sending request"); walk the
    // source chain so "connection refused" reaches the reader.
    let mut msg = e.to_string();
    let mut src = std::error::Error::source(&e);
    while let Some(s) = src {
        msg = format!("{msg}: {s}");
        src = s.source();
    }
    if e.is_timeout() {
        ExecError::TimedOut(Duration::ZERO)
    } else if e.is_connect() {
        ExecError::Unreachable(msg)
    } else {
        ExecError::Failed(msg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn errors_never_carry_the_url_a_secret_may_be_in() {
        let c = HttpClient::new(1024).unwrap();
        let req = HttpRequest::get(
            "http://127.0.0.1:1/bot123456:SECRET-TOKEN/getMe",
            Duration::from_secs(2),
        );
        let e = c.send(&req).await.unwrap_err();
        assert!(!e.to_string().contains("SECRET-TOKEN"), "{e}");
        assert!(!e.to_string().contains("/bot"), "{e}");
    }
}
