//! A request over HTTP/2 for the client: a connection of the user's per origin (kept for the
//! next request; over TLS when the server chose h2 by ALPN), the request's fields made from the HTTP/1.1 ones, the answer as a
//! `Response`.

#[allow(unused_imports)]
use crate::prelude::*;

use super::conn::{Body, H2Conn, H2Failure, Limits};
use crate::client::{Counters, phase_ms, pool_key};
use crate::{
    Client, H2Mode, Headers, HttpError, Method, Net, Phase, Request, Response, Timings, Url,
};

/// Headers HTTP/2 does not carry (RFC 9113 section 8.2.2), and Host (`:authority` instead).
const DROPPED: [&str; 6] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "upgrade",
    "host",
];

/// The request's fields: pseudo-headers, then the headers with lower-case names.
fn fields(method: Method, url: &Url, headers: &Headers, body_len: u64) -> Vec<(String, String)> {
    let authority =
        crate::codec::header(headers, "host").map_or_else(|| url.authority(), str::to_string);
    let mut f = vec![
        (":method".to_string(), method.as_str().to_string()),
        (":scheme".to_string(), url.scheme().to_string()),
        (":authority".to_string(), authority),
        (":path".to_string(), url.path.clone()),
    ];
    for (k, v) in headers {
        let k = k.to_ascii_lowercase();
        let te_ok = k != "te" || v.eq_ignore_ascii_case("trailers");
        if !DROPPED.contains(&k.as_str()) && te_ok && k != "content-length" {
            f.push((k, v.clone()));
        }
    }
    if !f.iter().any(|(k, _)| k == "user-agent") {
        f.push(("user-agent".into(), "scheduler-executor/0.1".into()));
    }
    if body_len > 0 || matches!(method, Method::Post | Method::Put | Method::Patch) {
        f.push(("content-length".into(), body_len.to_string()));
    }
    f
}

/// A failure as the request's error, or (`Err`) why it may go again on a new connection: the
/// server said it did not process it, or a kept connection ended before any of the answer and
/// the method is idempotent (as HTTP/1.1's stale connections).
fn failure(f: H2Failure, reused: bool, idempotent: bool) -> Result<HttpError, String> {
    Ok(match f {
        H2Failure::Unprocessed(why) => return Err(why),
        H2Failure::Stale(why) if reused && idempotent => return Err(why),
        H2Failure::Stale(why) | H2Failure::Io(why) => HttpError::Io(why),
        H2Failure::Timeout(first) => HttpError::Timeout(if first {
            Phase::FirstByte
        } else {
            Phase::BetweenBytes
        }),
        H2Failure::Protocol(m) => HttpError::Protocol(format!("HTTP/2: {m}")),
        H2Failure::TooLarge(m) => HttpError::TooLarge(m),
    })
}

/// What a new connection for an HTTP/2 request turned out to be.
enum Opened<C: crate::Conn> {
    H2(H2Conn<C>),
    /// The server chose HTTP/1.1 by ALPN (`H2Mode::Auto`): the request goes that way.
    Http1,
}

impl<N: Net> Client<N> {
    /// One request over HTTP/2: over TLS when the server chooses h2 by ALPN, over plain TCP
    /// with prior knowledge (h2c) when HTTP/2 is required. `None`: the request goes over
    /// HTTP/1.1 (plain TCP with `H2Mode::Auto`, or a server that chose HTTP/1.1; the fresh
    /// connection is then in the HTTP/1.1 pool). A request the server did not process
    /// (REFUSED_STREAM, a GOAWAY below it) or a kept connection found closed goes again on a
    /// new connection, once.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn h2_exchange(
        &mut self,
        req: &Request,
        method: Method,
        url: &Url,
        headers: &Headers,
        body: &[u8],
        end: u64,
        counters: &mut crate::client::Counters,
    ) -> Option<Result<Response, HttpError>> {
        let key = pool_key(url, req);
        let auto = req.h2 == H2Mode::Auto;
        if auto && (!url.tls || self.h1_only.contains(&key)) {
            return None;
        }
        let fields = fields(method, url, headers, body.len() as u64 + self.streaming);
        let refs: Vec<(&str, &str)> = fields
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let mut tries = 0;
        loop {
            tries += 1;
            let mut timings = Timings::default();
            let (mut conn, reused) = match self.h2.remove(&key).filter(H2Conn::usable) {
                Some(c) => (c, true),
                None => match self.h2_connect(url, req, end, &mut timings) {
                    Ok(Opened::H2(c)) => (c, false),
                    Ok(Opened::Http1) => return None,
                    Err(e) => return Some(Err(e)),
                },
            };
            let r = self.h2_request(&mut conn, &refs, body, req, end, &mut timings, counters);
            if conn.usable() && req.keep_alive {
                self.h2.insert(key.clone(), conn);
            }
            match r {
                Ok(mut resp) => {
                    resp.reused = reused;
                    return Some(Ok(resp));
                }
                Err(f) => match failure(f, reused, method.idempotent()) {
                    Ok(e) => return Some(Err(e)),
                    // A streamed body read from cannot go again.
                    Err(why) if tries >= 2 || self.upload_touched() => {
                        return Some(Err(HttpError::Io(why)));
                    }
                    Err(_) => {}
                },
            }
        }
    }

    /// A new connection: h2c over plain TCP; over TLS, h2 if the server chooses it.
    fn h2_connect(
        &mut self,
        url: &Url,
        req: &Request,
        end: u64,
        timings: &mut Timings,
    ) -> Result<Opened<N::Conn>, HttpError> {
        let offer: Vec<String> = match (url.tls, req.h2) {
            (false, _) => Vec::new(),
            (true, H2Mode::On) => vec!["h2".into()],
            (true, _) => vec!["h2".into(), "http/1.1".into()],
        };
        let (conn, chosen) = self.connect_offering(url, req, end, timings, &offer)?;
        if url.tls && chosen.as_deref() != Some("h2") {
            if req.h2 == H2Mode::On {
                let said = chosen.map_or(
                    "no protocol (or this host's TLS has no ALPN)".to_string(),
                    |p| net_text::Quoted(&p).to_string(),
                );
                return Err(HttpError::Protocol(format!(
                    "HTTP/2 required, and the server chose {said} by ALPN"
                )));
            }
            let key = pool_key(url, req);
            let now = self.net.now_us();
            self.pool.checkin(&key, conn, now);
            self.h1_only.insert(key);
            return Ok(Opened::Http1);
        }
        let (ms, _) = phase_ms(req.timeouts.between_bytes_ms, end, self.net.now_us())?;
        H2Conn::open(conn, ms)
            .map(Opened::H2)
            .map_err(|e| HttpError::Io(format!("sending the HTTP/2 preface: {e}")))
    }

    #[allow(clippy::too_many_arguments)]
    fn h2_request(
        &mut self,
        conn: &mut H2Conn<N::Conn>,
        fields: &[(&str, &str)],
        body: &[u8],
        req: &Request,
        end: u64,
        timings: &mut Timings,
        counters: &mut Counters,
    ) -> Result<Response, H2Failure> {
        let (sent0, received0) = (conn.sent, conn.received);
        let streamed = self.streaming;
        let Client { net, upload, .. } = self;
        let now = || net.now_us();
        let mut more = |want: usize| Client::<N>::upload_piece(upload, want);
        let body = Body {
            fixed: body,
            streamed,
            more: (streamed > 0)
                .then_some(&mut more as &mut dyn FnMut(usize) -> Result<Vec<u8>, String>),
        };
        let start = now();
        let limits = Limits {
            now: &now,
            end,
            first_byte_ms: req.timeouts.first_byte_ms,
            between_bytes_ms: req.timeouts.between_bytes_ms,
            max_body: req.max_body,
            keep_body: req.keep_body,
            decompress: req.decompress,
        };
        let r = conn.request(fields, body, &limits);
        counters.sent += conn.sent - sent0;
        counters.received += conn.received - received0;
        let h = r?;
        self.done_us = self.net.now_us();
        timings.first_byte_us = h.first_byte_at.saturating_sub(start);
        let (body, body_len) = h.body.finish();
        Ok(Response {
            status: h.status,
            reason: String::new(),
            headers: h.headers,
            trailers: h.trailers,
            body,
            body_len,
            timings: *timings,
            bytes_sent: 0,
            bytes_received: 0,
            source: conn.local_addr(),
            attempts: 0,
            redirects: 0,
            final_url: String::new(),
            reused: false,
        })
    }
}
