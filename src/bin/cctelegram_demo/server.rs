//! One connection's life: read requests in order (keep-alive and pipelining), answer each,
//! close on any error or on an idle timeout.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::http::{Request, error_response, head_end, parse_head};
use crate::routes::respond;
use crate::state::State;

const MAX_HEAD: usize = 16 * 1024;
const MAX_BODY: usize = 1024 * 1024;
/// Idle keep-alive connections (and half-sent requests) are closed after this long.
const IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// One connection: requests in order (keep-alive and pipelining), closed on any error.
pub(crate) async fn serve_connection(state: Arc<State>, mut stream: TcpStream, peer: SocketAddr) {
    let _ = stream.set_nodelay(true);
    let mut buf: Vec<u8> = Vec::with_capacity(2048);
    loop {
        let Some(req) = read_request(&mut stream, &mut buf).await else {
            return;
        };
        let keep_alive = req.keep_alive();
        let resp = respond(&state, &req, peer).await;
        let bytes = resp.encode(req.method == "HEAD", keep_alive);
        if stream.write_all(&bytes).await.is_err() || !keep_alive {
            let _ = stream.shutdown().await;
            return;
        }
    }
}

/// The next request's head, with its body read and discarded (no route uses a body).
/// `None` means close the connection; any error answer has already been sent.
async fn read_request(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Option<Request> {
    let end = loop {
        match head_end(buf) {
            Some(end) if end <= MAX_HEAD => break end,
            None if buf.len() <= MAX_HEAD => {}
            _ => {
                let _ = stream
                    .write_all(&error_response(431, "request head too large"))
                    .await;
                return None;
            }
        }
        if !read_more(stream, buf).await {
            return None;
        }
    };
    let Some(req) = parse_head(&buf[..end]) else {
        let _ = stream.write_all(&error_response(400, "bad request")).await;
        return None;
    };
    buf.drain(..end);
    if req.chunked {
        let _ = stream
            .write_all(&error_response(411, "chunked bodies are not supported"))
            .await;
        return None;
    }
    if req.content_length > MAX_BODY {
        let _ = stream
            .write_all(&error_response(413, "body too large"))
            .await;
        return None;
    }
    while buf.len() < req.content_length {
        if !read_more(stream, buf).await {
            return None;
        }
    }
    buf.drain(..req.content_length);
    Some(req)
}

/// Reads more bytes into `buf`; false on EOF, error or idle timeout.
async fn read_more(stream: &mut TcpStream, buf: &mut Vec<u8>) -> bool {
    let mut chunk = [0u8; 4096];
    match tokio::time::timeout(IDLE_TIMEOUT, stream.read(&mut chunk)).await {
        Ok(Ok(n)) if n > 0 => {
            buf.extend_from_slice(&chunk[..n]);
            true
        }
        _ => false,
    }
}
