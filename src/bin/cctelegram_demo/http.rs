//! Just enough HTTP/1.1: parse a request head, encode a response. No chunked bodies, no
//! upgrades; anything unusual is refused rather than half-supported.

use std::fmt::Write as _;

use crate::VERSION;
use crate::logging::js;

const MAX_HEADERS: usize = 100;

pub(crate) struct Request {
    pub(crate) method: String,
    pub(crate) path: String,
    http11: bool,
    headers: Vec<(String, String)>,
    pub(crate) content_length: usize,
    pub(crate) chunked: bool,
}

impl Request {
    /// First value of header `name`, which must be given in lower case.
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// HTTP/1.1 keeps the connection unless told `close`; HTTP/1.0 only if told `keep-alive`.
    pub(crate) fn keep_alive(&self) -> bool {
        let tokens = self.header("connection").unwrap_or("").to_ascii_lowercase();
        let has = |t: &str| tokens.split(',').any(|x| x.trim() == t);
        if self.http11 {
            !has("close")
        } else {
            has("keep-alive")
        }
    }

    pub(crate) fn is_read_only(&self) -> bool {
        matches!(self.method.as_str(), "GET" | "HEAD")
    }
}

/// End of the request head (index after the blank line); accepts CRLF or bare LF.
pub(crate) fn head_end(buf: &[u8]) -> Option<usize> {
    let mut i = 0;
    while i < buf.len() {
        if buf[i] == b'\n' {
            if buf.get(i + 1) == Some(&b'\n') {
                return Some(i + 2);
            }
            if buf.get(i + 1) == Some(&b'\r') && buf.get(i + 2) == Some(&b'\n') {
                return Some(i + 3);
            }
        }
        i += 1;
    }
    None
}

/// `None` for anything malformed; the caller answers 400 and closes.
pub(crate) fn parse_head(head: &[u8]) -> Option<Request> {
    let text = std::str::from_utf8(head).ok()?;
    let mut lines = text.split('\n').map(|l| l.trim_end_matches('\r'));
    let mut parts = lines.next()?.split(' ');
    let (method, target, version) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some()
        || method.is_empty()
        || !method.bytes().all(|b| b.is_ascii_uppercase())
        || !target.starts_with('/')
    {
        return None;
    }
    let http11 = match version {
        "HTTP/1.1" => true,
        "HTTP/1.0" => false,
        _ => return None,
    };
    let mut req = Request {
        method: method.to_string(),
        path: target.split(['?', '#']).next().unwrap_or("/").to_string(),
        http11,
        headers: Vec::new(),
        content_length: 0,
        chunked: false,
    };
    for line in lines.filter(|l| !l.is_empty()) {
        let (name, value) = line.split_once(':')?;
        if name.is_empty() || name.contains(' ') || req.headers.len() >= MAX_HEADERS {
            return None;
        }
        let name = name.to_ascii_lowercase();
        let value = value.trim().to_string();
        match name.as_str() {
            "content-length" => req.content_length = value.parse().ok()?,
            "transfer-encoding" => req.chunked = true,
            _ => {}
        }
        req.headers.push((name, value));
    }
    Some(req)
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        405 => "Method Not Allowed",
        411 => "Length Required",
        413 => "Payload Too Large",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Unknown",
    }
}

pub(crate) struct Response {
    pub(crate) status: u16,
    pub(crate) content_type: &'static str,
    pub(crate) body: String,
    /// Headers beyond the fixed set `encode` always writes.
    pub(crate) extra: Vec<(&'static str, String)>,
}

impl Response {
    pub(crate) fn json(status: u16, body: String) -> Self {
        Response {
            status,
            content_type: "application/json",
            body,
            extra: Vec::new(),
        }
    }

    /// `head_only` still sends the GET body's Content-Length, as HEAD requires.
    pub(crate) fn encode(&self, head_only: bool, keep_alive: bool) -> Vec<u8> {
        let mut out = format!(
            "HTTP/1.1 {} {}\r\nServer: cctelegram-demo/{VERSION}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: {}\r\n",
            self.status,
            reason(self.status),
            self.content_type,
            self.body.len(),
            if keep_alive { "keep-alive" } else { "close" }
        );
        for (k, v) in &self.extra {
            let _ = write!(out, "{k}: {v}\r\n");
        }
        out.push_str("\r\n");
        let mut bytes = out.into_bytes();
        if !head_only {
            bytes.extend_from_slice(self.body.as_bytes());
        }
        bytes
    }
}

/// A protocol-level error, sent just before the connection is closed.
pub(crate) fn error_response(status: u16, message: &str) -> Vec<u8> {
    let body = format!("{{\"error\":{},\"status\":{status}}}", js(message));
    Response::json(status, body).encode(false, false)
}
