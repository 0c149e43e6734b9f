//! What each request gets: /metrics, /health behind the API key, and a JSON echo for every
//! other path, with the control file's fault and the rate limiter applied.

use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use crate::args::Role;
use crate::fault::{Mode, read_mode};
use crate::http::{Request, Response};
use crate::logging::{Log, access_line, js};
use crate::metrics::{method_label, render};
use crate::ratelimit::RATE_LIMIT_PER_SEC;
use crate::state::State;
use crate::{VERSION, lock};

pub(crate) async fn respond(state: &State, req: &Request, peer: SocketAddr) -> Response {
    let started = Instant::now();
    let mode = read_mode(state.control_file.as_deref());
    let ip = client_ip(peer, req);
    let request_id = request_id(state, req);
    let path = req.path.as_str();

    // Scrapes bypass faults, the rate limiter and the access log (see the crate docs).
    if path == "/metrics" {
        let mut resp = metrics_page(state, req, mode);
        let secs = started.elapsed().as_secs_f64();
        lock(&state.metrics).observe(method_label(&req.method), path, resp.status, secs);
        resp.extra.push(("X-Request-Id", request_id));
        return resp;
    }

    let mut resp = route(state, req, mode, &ip, &request_id);
    // Slow mode delays every answer, errors included, as a saturated backend would.
    if let Mode::Slow(ms) = mode {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
    let elapsed = started.elapsed();
    lock(&state.metrics).observe(
        method_label(&req.method),
        path,
        resp.status,
        elapsed.as_secs_f64(),
    );
    let line = access_line(&req.method, path, resp.status, elapsed, &ip, &request_id);
    state.log(Log::App, &line);
    resp.extra.push(("X-Request-Id", request_id));
    resp
}

/// Everything but /metrics, in priority order: rate limit, /health, injected 5xx, echo.
fn route(state: &State, req: &Request, mode: Mode, ip: &IpAddr, request_id: &str) -> Response {
    let path = req.path.as_str();
    if state.over_limit(*ip) {
        rate_limited(state, ip, path)
    } else if path == "/health" {
        health(state, req, mode, ip, request_id)
    } else if mode == Mode::Error5xx {
        Response::json(
            500,
            format!(
                "{{\"error\":\"internal_error\",\"message\":\"injected fault (5xx mode)\",\"request_id\":{}}}",
                js(request_id)
            ),
        )
    } else {
        echo(state, req, mode, request_id)
    }
}

/// The caller's X-Request-Id if it is short and printable (it ends up in logs), else a new one.
fn request_id(state: &State, req: &Request) -> String {
    req.header("x-request-id")
        .filter(|v| v.len() <= 64 && v.bytes().all(|b| b.is_ascii_graphic()))
        .map(str::to_string)
        .unwrap_or_else(|| state.request_id())
}

/// The client as the service sees it: the peer, or the address nginx on the same host
/// passed in X-Real-IP / X-Forwarded-For (trusted from loopback only).
fn client_ip(peer: SocketAddr, req: &Request) -> IpAddr {
    if peer.ip().is_loopback() {
        let forwarded = req.header("x-real-ip").or_else(|| {
            req.header("x-forwarded-for")
                .and_then(|v| v.split(',').next())
        });
        if let Some(ip) = forwarded.and_then(|v| v.trim().parse().ok()) {
            return ip;
        }
    }
    peer.ip()
}

fn metrics_page(state: &State, req: &Request, mode: Mode) -> Response {
    if !req.is_read_only() {
        return method_not_allowed();
    }
    Response {
        status: 200,
        content_type: "text/plain; version=0.0.4; charset=utf-8",
        body: render(state, mode),
        extra: Vec::new(),
    }
}

fn rate_limited(state: &State, ip: &IpAddr, path: &str) -> Response {
    state.log_security(
        "RATE_LIMIT_EXCEEDED",
        "",
        ip,
        &format!(
            ",\"path\":{},\"limit_per_second\":{RATE_LIMIT_PER_SEC}",
            js(path)
        ),
    );
    let mut r = Response::json(
        429,
        "{\"error\":\"rate_limited\",\"message\":\"too many requests\"}".to_string(),
    );
    r.extra.push(("Retry-After", "1".to_string()));
    r
}

/// Any other path: echo the request; on the bridge a write also counts as a message to send.
fn echo(state: &State, req: &Request, mode: Mode, request_id: &str) -> Response {
    if state.role == Role::Bridge && !req.is_read_only() {
        state.bridge_send(mode);
    }
    Response::json(
        200,
        format!(
            "{{\"ok\":true,\"service\":{},\"host\":{},\"method\":{},\"path\":{},\"request_id\":{}}}",
            js(state.role.service()),
            js(&state.name),
            js(&req.method),
            js(&req.path),
            js(request_id)
        ),
    )
}

fn method_not_allowed() -> Response {
    let mut r = Response::json(405, "{\"error\":\"method_not_allowed\"}".to_string());
    r.extra.push(("Allow", "GET, HEAD".to_string()));
    r
}

fn health(state: &State, req: &Request, mode: Mode, ip: &IpAddr, request_id: &str) -> Response {
    if !req.is_read_only() {
        return method_not_allowed();
    }
    if let Err(reason) = state.api_key.check(req.header("x-api-key")) {
        return unauthorized(state, reason, ip, request_id);
    }
    let healthy = matches!(mode, Mode::Ok | Mode::Slow(_));
    let mut body = format!(
        "{{\"status\":{},\"service\":{},\"host\":{},\"version\":\"{VERSION}\",\"uptime_seconds\":{}",
        js(if healthy { "healthy" } else { "unhealthy" }),
        js(state.role.service()),
        js(&state.name),
        state.started.elapsed().as_secs()
    );
    if state.role == Role::Bridge {
        let (connected, queue, sent) = state.bridge_status(mode);
        let _ = write!(
            body,
            ",\"telegram\":{},\"queue_depth\":{queue},\"messages_sent\":{sent}",
            js(if connected {
                "connected"
            } else {
                "disconnected"
            })
        );
    }
    match mode {
        Mode::Fail => body.push_str(",\"error\":\"injected fault (fail mode)\""),
        Mode::Error5xx => body.push_str(",\"error\":\"injected fault (5xx mode)\""),
        _ => {}
    }
    body.push('}');
    let mut r = Response::json(if healthy { 200 } else { 503 }, body);
    r.extra.push(("Cache-Control", "no-store".to_string()));
    r
}

/// 401 for a missing or wrong key, recorded in security.log with the reason.
fn unauthorized(state: &State, reason: &str, ip: &IpAddr, request_id: &str) -> Response {
    state.log_security(
        "AUTHENTICATION_FAILED",
        &format!(" {reason} API key"),
        ip,
        &format!(
            ",\"path\":\"/health\",\"reason\":{},\"request_id\":{}",
            js(reason),
            js(request_id)
        ),
    );
    let mut r = Response::json(
        401,
        "{\"error\":\"unauthorized\",\"message\":\"missing or invalid X-API-Key\"}".to_string(),
    );
    r.extra.push((
        "WWW-Authenticate",
        "ApiKey header=\"X-API-Key\"".to_string(),
    ));
    r
}
