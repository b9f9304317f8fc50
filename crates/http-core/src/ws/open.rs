//! The opening handshake over a connection of the client's (section 4.1): connect as an
//! HTTP request would (source address, resolve, TLS), send the upgrade, read the answer.

#[allow(unused_imports)]
use crate::prelude::*;

use core::net::SocketAddr;

use super::params::WsParams;
use super::{Session, WsError, handshake};
use crate::client::phase_ms;
use crate::codec;
use crate::{Client, Conn, HttpError, Method, Net, NetError, Phase, Timings, Url};

const HEAD_CHUNK: usize = 4 * 1024;

/// What the handshake gave besides the session.
#[derive(Debug, Clone)]
pub struct Opened {
    pub status: u16,
    pub headers: crate::Fields,
    pub protocol: Option<String>,
    pub timings: Timings,
    pub source: Option<SocketAddr>,
    pub bytes_sent: u64,
    pub bytes_received: u64,
}

impl<N: Net> Client<N> {
    /// Connect and upgrade: a session, or why not.
    pub fn ws_open(&mut self, p: &WsParams) -> Result<(Session<N::Conn>, Opened), WsError> {
        let req = &p.request;
        let url = Url::parse(&req.url).map_err(WsError::Open)?;
        let start = self.net.now_us();
        let end =
            start.saturating_add(req.timeouts.total_ms.clamp(1, 365 * 24 * 3600 * 1000) * 1000);
        let mut timings = Timings::default();
        let mut conn = self
            .connect(&url, req, end, &mut timings)
            .map_err(WsError::Open)?;
        let key =
            handshake::base64(&[self.random().to_le_bytes(), self.random().to_le_bytes()].concat());
        let mut headers = handshake::request_headers(&req.headers, &key, &p.subprotocols)?;
        if req.cookies
            && let Some(c) = self.jar.header(&url, self.net.wall_ms() / 1000)
        {
            headers.push(("Cookie".into(), c));
        }
        let wire = codec::encode_request(Method::Get, &url, &headers, &[], true, None)
            .map_err(WsError::Open)?;
        let sent_at = self.net.now_us();
        let (ms, _) =
            phase_ms(req.timeouts.between_bytes_ms, end, sent_at).map_err(WsError::Open)?;
        conn.write(&wire, ms)
            .map_err(|e| WsError::Io(format!("sending the handshake: {e}")))?;
        let (head, buf) = self.read_head(&mut conn, req, end, sent_at, &mut timings)?;
        let protocol = handshake::check(&head, &key, &p.subprotocols)?;
        if req.cookies {
            let now = self.net.wall_ms() / 1000;
            for v in head.headers.all("set-cookie") {
                self.jar.store(&url, v, now);
            }
        }
        timings.total_us = self.net.now_us().saturating_sub(start);
        let opened = Opened {
            status: head.status,
            headers: head.headers,
            protocol,
            timings,
            source: conn.local_addr(),
            bytes_sent: wire.len() as u64,
            bytes_received: buf.len() as u64,
        };
        let session = Session::new(conn, &buf[head.len..], p.max_message, self.random());
        Ok((session, opened))
    }

    /// Read until the answer's head is whole (first byte within the first-byte timeout, the
    /// rest within between-bytes ones).
    fn read_head(
        &mut self,
        conn: &mut N::Conn,
        req: &crate::Request,
        end: u64,
        sent_at: u64,
        timings: &mut Timings,
    ) -> Result<(codec::Head, Vec<u8>), WsError> {
        let mut buf = Vec::new();
        loop {
            let (phase, ms) = match buf.is_empty() {
                true => (Phase::FirstByte, req.timeouts.first_byte_ms),
                false => (Phase::BetweenBytes, req.timeouts.between_bytes_ms),
            };
            let (ms, clipped) = phase_ms(ms, end, self.net.now_us()).map_err(WsError::Open)?;
            match conn.read(HEAD_CHUNK, ms) {
                Ok(more) if more.is_empty() => {
                    return Err(WsError::Handshake(
                        0,
                        "the server closed the connection before answering".into(),
                    ));
                }
                Ok(more) => {
                    if buf.is_empty() {
                        timings.first_byte_us = self.net.now_us().saturating_sub(sent_at);
                    }
                    buf.extend_from_slice(&more);
                }
                Err(NetError::Timeout) => {
                    let phase = if clipped { Phase::Total } else { phase };
                    return Err(WsError::Open(HttpError::Timeout(phase)));
                }
                Err(e) => return Err(WsError::Io(format!("reading the handshake's answer: {e}"))),
            }
            let head = codec::parse_head(&buf, req.max_header_bytes)
                .map_err(|e| WsError::Handshake(0, e.to_string()))?;
            if let Some(head) = head {
                return Ok((head, buf));
            }
        }
    }
}
