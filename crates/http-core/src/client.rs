//! The client: connection reuse, per-phase timeouts, retries with backoff, redirects.

use alloc::borrow::Cow;
use core::net::{IpAddr, SocketAddr};

#[allow(unused_imports)]
use crate::prelude::*;

use crate::codec::{self, ChunkedDecoder, Framing, Head, encode_with_stream, parse_head};
use crate::pool::{ConnPool, PoolKey};
use crate::sink::{BodyOut, BodySink, keeps_body};
use crate::{
    Conn, ExchangeError, Exchanged, HttpError, Method, Net, NetError, Phase, Request, Response,
    Timings, TlsReason, Url,
};

/// Reads ask for what is likely to come: a page for the head (the host allocates and zeroes
/// the whole buffer it reads into, on every read; most heads, and many small bodies with
/// them, fit in one), up to 64 KiB (wasmtime's cap per read) for bodies.
const HEAD_CHUNK: usize = 4 * 1024;
const READ_CHUNK: usize = 64 * 1024;

pub struct Client<N: Net> {
    pub net: N,
    pub(crate) pool: ConnPool<N::Conn>,
    rng: u64,
    /// When the last response was complete (µs, `Net::now_us`): the end of an action's total.
    pub(crate) done_us: u64,
    /// The cookies of requests with `cookies` on.
    pub jar: crate::cookies::Jar,
    /// The body the current action streams, if any.
    pub(crate) upload: Option<crate::upload::Upload>,
    /// Bytes of it the current exchange sends after its head (0 once a redirect drops it).
    pub(crate) streaming: u64,
    /// HTTP/2 connections kept for the next request, one per origin and source.
    pub(crate) h2: alloc::collections::BTreeMap<PoolKey, crate::h2::conn::H2Conn<N::Conn>>,
    /// Origins whose server chose HTTP/1.1 over h2 by ALPN (`H2Mode::Auto` asks once).
    pub(crate) h1_only: alloc::collections::BTreeSet<PoolKey>,
}

/// Why one exchange failed: `NotIdle` means a pooled connection was found busy or closed
/// before anything was sent (any method may then go on another connection); `Stale` means the
/// connection died before any response byte, which on a reused connection calls for one fresh
/// try (idempotent methods only).
pub(crate) enum Failure {
    NotIdle,
    Stale(String),
    Http(HttpError),
}

impl From<HttpError> for Failure {
    fn from(e: HttpError) -> Self {
        Failure::Http(e)
    }
}

#[derive(Default)]
pub(crate) struct Counters {
    pub sent: u64,
    pub received: u64,
}

/// A phase's timeout clipped by the total deadline; the flag says the total was the limit.
pub(crate) fn phase_ms(phase_ms: u64, end: u64, now: u64) -> Result<(u64, bool), HttpError> {
    let left = end.saturating_sub(now) / 1000;
    if left == 0 {
        return Err(HttpError::Timeout(Phase::Total));
    }
    Ok(if left < phase_ms {
        (left, true)
    } else {
        (phase_ms.max(1), false)
    })
}

fn timeout(phase: Phase, clipped: bool) -> HttpError {
    HttpError::Timeout(if clipped { Phase::Total } else { phase })
}

fn retryable(e: &HttpError, policy: &crate::RetryPolicy) -> bool {
    policy.all_errors
        || matches!(e, HttpError::Connect(_)) && policy.connect
        || matches!(
            e,
            HttpError::Timeout(
                Phase::Dns | Phase::Connect | Phase::Tls | Phase::FirstByte | Phase::BetweenBytes
            )
        )
}

/// The first head of `buf`: all of one interim head (its length), a final head, or not yet
/// complete.
enum HeadScan {
    Interim(usize),
    Final,
    Partial,
}

fn first_final_head(buf: &[u8], max_header_bytes: usize) -> Result<HeadScan, HttpError> {
    Ok(match parse_head(buf, max_header_bytes)? {
        Some(h) if (100..200).contains(&h.status) && h.status != 101 => HeadScan::Interim(h.len),
        Some(_) => HeadScan::Final,
        None => HeadScan::Partial,
    })
}

/// Whether `buf` holds a final (non-interim) head, or the start of one past the interim ones.
pub(crate) fn has_final_head(buf: &[u8], max_header_bytes: usize) -> Result<bool, HttpError> {
    let mut looked = 0;
    loop {
        match first_final_head(&buf[looked..], max_header_bytes)? {
            HeadScan::Interim(n) => {
                looked += n;
                interim_bound(looked, max_header_bytes)?;
            }
            HeadScan::Final => return Ok(true),
            HeadScan::Partial => return Ok(false),
        }
    }
}

/// Interim heads (1xx) count together against the head limit: a server sending them without
/// end is stopped as one sending an endless head is, not read until a timeout.
fn interim_bound(interim: usize, max_header_bytes: usize) -> Result<(), HttpError> {
    if interim > max_header_bytes {
        return Err(HttpError::TooLarge(format!(
            "interim (1xx) response heads over {max_header_bytes} bytes"
        )));
    }
    Ok(())
}

/// One `Conn::exchange` of `len` bytes, its failure placed: `counters.sent` gets the bytes of
/// a send that completed before the receive failed.
fn exchanged(
    r: Result<Exchanged, ExchangeError>,
    len: usize,
    (write_clipped, read_clipped): (bool, bool),
    counters: &mut Counters,
) -> Result<Exchanged, Failure> {
    match r {
        Ok(ex) => {
            counters.sent += (len - ex.unsent) as u64;
            Ok(ex)
        }
        Err(ExchangeError::NotIdle) => Err(Failure::NotIdle),
        Err(ExchangeError::Send(NetError::Timeout)) => {
            Err(timeout(Phase::BetweenBytes, write_clipped).into())
        }
        Err(ExchangeError::Send(NetError::Tls(r, m))) => Err(HttpError::Tls(r, m).into()),
        Err(ExchangeError::Send(e)) => Err(Failure::Stale(format!("sending the request: {e}"))),
        Err(ExchangeError::Receive(e)) => {
            counters.sent += len as u64;
            Err(match e {
                NetError::Timeout => timeout(Phase::FirstByte, read_clipped).into(),
                // A fatal alert at the first read (a TLS 1.3 server refusing the client's
                // certificate, or its absence): the server's answer, not a stale connection.
                NetError::Tls(r, m) => HttpError::Tls(r, m).into(),
                e => Failure::Stale(format!("no response: {e}")),
            })
        }
    }
}

/// `Retry-After` as milliseconds to wait: delay-seconds, or an HTTP-date (a date already
/// past means no wait). Anything else is ignored, and backoff applies.
fn retry_after(resp: &Response, now_ms: u64) -> Option<u64> {
    let v = crate::codec::trim_ows(resp.header("retry-after")?);
    if let Ok(secs) = v.parse::<u64>() {
        return Some(secs.saturating_mul(1000));
    }
    let at_ms = crate::date::parse_http_date(v)?.saturating_mul(1000);
    Some(at_ms.saturating_sub(now_ms))
}

/// What a request's first exchange needs that follows from the request alone: its parsed URL,
/// that URL's text as reported (`Response::final_url` when nothing redirects), and its bytes on
/// the wire.
struct Derived {
    url: Url,
    url_text: String,
    wire: Vec<u8>,
    /// Where its keep-alive connections are pooled.
    key: PoolKey,
}

impl Derived {
    fn of(req: &Request) -> Result<Derived, HttpError> {
        let url = Url::parse(&req.url)?;
        let wire = encode_with_stream(
            req.method,
            &url,
            &req.headers,
            &req.body,
            req.streamed_len,
            req.keep_alive,
            req.proxy.as_ref(),
        )?;
        Ok(Derived {
            url_text: url.to_text(),
            key: pool_key(&url, req),
            url,
            wire,
        })
    }
}

/// A body, its trailers, and whether the connection ended exactly at its end.
type ReadBody = (BodySink, crate::Fields, bool);

/// A response being read: when the request went, the deadline, and the clock as of the last
/// read.
struct Reading {
    sent_at: u64,
    end: u64,
    now: u64,
}

/// A request's way through retries and redirects: what a redirect changes (copied on the
/// first one), and what the answer reports.
struct Chain<'a> {
    url: Cow<'a, Url>,
    method: Method,
    body: &'a [u8],
    streamed: u64,
    headers: Cow<'a, crate::Headers>,
    attempts: u32,
    redirects: u32,
    /// URLs seen on the redirect chain; filled on the first redirect only.
    visited: Vec<String>,
    counters: Counters,
}

impl Chain<'_> {
    /// Follow the answer's redirect, if it is one to follow: true when the chain goes on.
    /// A 303 (or 301/302 after anything but HEAD) becomes a GET without a body; another
    /// origin gets no Authorization, Cookie or Host.
    fn follow(&mut self, req: &Request, resp: &Response) -> Result<bool, HttpError> {
        // A streamed body cannot be sent again: a 307 or 308 is the answer then.
        let resend = matches!(resp.status, 307 | 308) && self.streamed > 0;
        let Some(location) = resp.header("location") else {
            return Ok(false);
        };
        if !matches!(resp.status, 301 | 302 | 303 | 307 | 308) || resend {
            return Ok(false);
        }
        if self.redirects >= req.max_redirects {
            return Err(HttpError::TooManyRedirects(self.redirects));
        }
        // A Location the client cannot follow is the server's fault, not the caller's.
        let next = self.url.join(location).map_err(|e| {
            HttpError::BadRedirect(format!(
                "{} from {}: {e}",
                net_text::Quoted(crate::codec::trim_ows(location)),
                self.url.to_text()
            ))
        })?;
        if self.visited.is_empty() {
            self.visited.push(self.url.to_text());
        }
        let text = next.to_text();
        if self.visited.contains(&text) {
            return Err(HttpError::RedirectLoop(text));
        }
        self.visited.push(text);
        self.redirects += 1;
        if resp.status <= 303 && self.method != Method::Head {
            self.method = Method::Get;
            self.body = &[];
            self.streamed = 0;
            self.headers
                .to_mut()
                .retain(|(k, _)| !k.eq_ignore_ascii_case("content-type"));
        }
        if next.host != self.url.host || next.port != self.url.port || next.tls != self.url.tls {
            self.headers.to_mut().retain(|(k, _)| {
                !(k.eq_ignore_ascii_case("authorization")
                    || k.eq_ignore_ascii_case("cookie")
                    || k.eq_ignore_ascii_case("host"))
            });
        }
        self.url = Cow::Owned(next);
        Ok(true)
    }
}

/// The request's headers with the jar's cookies added to its own `Cookie` (or as one).
fn with_cookie<'a>(headers: &'a crate::Headers, cookie: Option<String>) -> Cow<'a, crate::Headers> {
    let Some(jar) = cookie else {
        return Cow::Borrowed(headers);
    };
    let mut hs = headers.clone();
    match hs
        .iter_mut()
        .find(|(k, _)| k.eq_ignore_ascii_case("cookie"))
    {
        Some((_, v)) => {
            v.push_str("; ");
            v.push_str(&jar);
        }
        None => hs.push(("Cookie".into(), jar)),
    }
    Cow::Owned(hs)
}

/// Where a request's keep-alive connections are pooled: its origin, source and proxy.
pub(crate) fn pool_key(url: &Url, req: &Request) -> PoolKey {
    PoolKey {
        host: url.host.clone(),
        port: url.port,
        source: req.bind_ip,
        tls: url.tls,
        proxy: req.proxy.clone(),
    }
}

/// A request checked and encoded once, for sending many times (`Client::execute_prepared`):
/// a workflow runs the same actions again and again. Only the source address can change
/// afterwards, since it does not enter the encoding.
pub struct Prepared {
    req: Request,
    derived: Derived,
}

impl Prepared {
    /// Fails as `Client::execute` would on this request (bad URL or header).
    pub fn new(req: Request) -> Result<Prepared, HttpError> {
        let derived = Derived::of(&req)?;
        Ok(Prepared { req, derived })
    }

    pub fn request(&self) -> &Request {
        &self.req
    }

    pub fn set_bind_ip(&mut self, ip: Option<IpAddr>) {
        self.req.bind_ip = ip;
        self.derived.key.source = ip;
    }

    /// Keep the response body, or only count it (`Request::keep_body`).
    pub fn set_keep_body(&mut self, keep: bool) {
        self.req.keep_body = keep;
    }
}

impl<N: Net> Client<N> {
    pub fn new(net: N) -> Self {
        Self::with_pool(net, 8, 30_000)
    }

    pub fn with_pool(net: N, max_idle_per_key: usize, idle_timeout_ms: u64) -> Self {
        let seed = net.seed() ^ 0x1234_5678;
        Client {
            net,
            pool: ConnPool::new(max_idle_per_key, idle_timeout_ms.saturating_mul(1000)),
            rng: seed | 1,
            done_us: 0,
            jar: crate::cookies::Jar::default(),
            upload: None,
            streaming: 0,
            h2: Default::default(),
            h1_only: Default::default(),
        }
    }

    pub fn idle_connections(&self) -> usize {
        self.pool.idle_count()
    }

    /// Close every idle connection.
    pub fn close_idle(&mut self) {
        self.pool.clear();
        self.h2.clear();
    }

    /// Close the idle connections bound to `source` (its address is going back to a pool).
    pub fn close_idle_from(&mut self, source: IpAddr) {
        self.pool.close_from(source);
        self.h2.retain(|k, _| k.source != Some(source));
    }

    pub(crate) fn random(&mut self) -> u64 {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        self.rng
    }

    /// Exponential backoff with jitter: a random delay in [d/2, d], d = base * 2^retry.
    fn backoff_ms(&mut self, req: &Request, retry: u32) -> u64 {
        if let Some(ms) = req.retry.delay_ms {
            return ms;
        }
        let d = req
            .retry
            .base_ms
            .saturating_mul(1u64 << retry.min(20))
            .min(req.retry.max_backoff_ms);
        d / 2 + self.random() % (d / 2 + 1)
    }

    /// Wait until `received` bytes since `since` (µs) are within `rate` bytes a second.
    fn throttle(&self, rate: u64, received: u64, since: u64, now: &mut u64) {
        let due = since.saturating_add(received.saturating_mul(1_000_000) / rate);
        if due > *now + 1000 {
            self.net.sleep_ms((due - *now) / 1000);
            *now = self.net.now_us();
        }
    }

    /// Sleep unless that would pass the deadline; false if there is not enough time.
    fn sleep_within(&self, ms: u64, end: u64) -> bool {
        let Some(until) = self.net.now_us().checked_add(ms.saturating_mul(1000)) else {
            return false;
        };
        if until >= end {
            return false;
        }
        self.net.sleep_ms(ms);
        true
    }

    pub fn execute(&mut self, req: &Request) -> Result<Response, HttpError> {
        let derived = Derived::of(req)?;
        self.execute_derived(req, &derived)
    }

    /// `execute` for a request prepared once.
    pub fn execute_prepared(&mut self, prepared: &Prepared) -> Result<Response, HttpError> {
        self.execute_derived(&prepared.req, &prepared.derived)
    }

    fn execute_derived(&mut self, req: &Request, derived: &Derived) -> Result<Response, HttpError> {
        let start = self.net.now_us();
        // Any total beyond a year is a year.
        let end =
            start.saturating_add(req.timeouts.total_ms.clamp(1, 365 * 24 * 3600 * 1000) * 1000);
        let mut chain = Chain {
            url: Cow::Borrowed(&derived.url),
            method: req.method,
            body: &req.body,
            streamed: req.streamed_len,
            headers: Cow::Borrowed(&req.headers),
            attempts: 0,
            redirects: 0,
            visited: Vec::new(),
            counters: Counters::default(),
        };
        loop {
            let mut resp = self.with_retries(req, derived, &mut chain, start, end)?;
            if req.cookies {
                self.keep_cookies(&chain.url, &resp);
            }
            if req.follow_redirects && chain.follow(req, &resp)? {
                continue;
            }
            if req.decompress
                && !resp.body.is_empty()
                && resp.headers.get("content-encoding").is_some()
            {
                // Codings split over several fields are one list, in the order applied (RFC
                // 9110 sections 5.3 and 8.4), as curl undoes them.
                let coding = resp
                    .headers
                    .all("content-encoding")
                    .collect::<Vec<_>>()
                    .join(",");
                let body = core::mem::take(&mut resp.body);
                resp.body = crate::encoding::decode(&coding, body, req.max_body)?;
                resp.body_len = resp.body.len() as u64;
                if !req.keep_body {
                    resp.body = Vec::new();
                }
            }
            resp.attempts = chain.attempts;
            resp.redirects = chain.redirects;
            resp.final_url = if chain.redirects == 0 {
                derived.url_text.clone()
            } else {
                chain.url.to_text()
            };
            resp.bytes_sent = chain.counters.sent;
            resp.bytes_received = chain.counters.received;
            resp.timings.total_us = self.done_us.saturating_sub(start);
            return Ok(resp);
        }
    }

    /// One request of the chain, tried again on the policy's statuses (429 and 503 unless it
    /// names others; after Retry-After or the backoff) and on a retryable failure, as the
    /// policy allows and the deadline (and the policy's time for retries) leaves time.
    fn with_retries(
        &mut self,
        req: &Request,
        derived: &Derived,
        chain: &mut Chain<'_>,
        start: u64,
        end: u64,
    ) -> Result<Response, HttpError> {
        let mut retries = 0u32;
        let policy = &req.retry;
        // A try fails: another starts if the policy's time for retries has not run out (and
        // its wait ends before the deadline), as curl's `--retry-max-time` decides.
        let retry_until = policy
            .max_time_ms
            .map_or(u64::MAX, |ms| start.saturating_add(ms.saturating_mul(1000)));
        loop {
            // The clock was read at the start; later attempts follow a wait or a redirect.
            let now = if chain.attempts == 0 {
                start
            } else {
                self.net.now_us()
            };
            chain.attempts += 1;
            let r = self.attempt(req, derived, chain, now, end);
            let may_retry = retries < policy.max_retries
                && (chain.method.idempotent() || policy.non_idempotent)
                && !self.upload_touched()
                && (retry_until == u64::MAX || self.net.now_us() < retry_until);
            match r {
                Ok(resp) if may_retry && policy.statuses.contains(resp.status) => {
                    let wait = match retry_after(&resp, self.net.wall_ms()) {
                        Some(ms) => ms,
                        None => self.backoff_ms(req, retries),
                    };
                    if !self.sleep_within(wait, end) {
                        return Ok(resp);
                    }
                }
                Err(e) if may_retry && retryable(&e, policy) => {
                    let wait = self.backoff_ms(req, retries);
                    if !self.sleep_within(wait, end) {
                        return Err(e);
                    }
                }
                r => return r,
            }
            retries += 1;
        }
    }

    /// One try: over HTTP/2 when the request asks for it (and the origin speaks it), else
    /// HTTP/1.1 with the request derived beforehand, encoded again only after a redirect or
    /// with the jar's cookie.
    fn attempt(
        &mut self,
        req: &Request,
        derived: &Derived,
        chain: &mut Chain<'_>,
        now: u64,
        end: u64,
    ) -> Result<Response, HttpError> {
        self.streaming = chain.streamed;
        let cookie = match req.cookies && !self.jar.is_empty() {
            true => self.jar.header(&chain.url, self.net.wall_ms() / 1000),
            false => None,
        };
        let Chain {
            url,
            method,
            body,
            streamed,
            headers,
            counters,
            ..
        } = chain;
        if req.h2 != crate::H2Mode::Off {
            let headers = with_cookie(headers, cookie.clone());
            if let Some(r) = self.h2_exchange(req, *method, url, &headers, body, end, counters) {
                return r;
            }
        }
        if chain.redirects == 0 && cookie.is_none() {
            let (key, wire) = (&derived.key, &derived.wire);
            return self.exchange(req, *method, url, key, wire, now, end, counters);
        }
        let key = pool_key(url, req);
        let headers = with_cookie(headers, cookie);
        let (ka, proxy) = (req.keep_alive, req.proxy.as_ref());
        let wire = encode_with_stream(*method, url, &headers, body, *streamed, ka, proxy)?;
        self.exchange(req, *method, url, &key, &wire, now, end, counters)
    }

    /// The answer's cookies, into the jar. The wall clock (a host call) is read only for an
    /// answer that sets one.
    fn keep_cookies(&mut self, url: &Url, resp: &Response) {
        let mut values = resp.headers.all("set-cookie").peekable();
        if values.peek().is_none() {
            return;
        }
        let now = self.net.wall_ms() / 1000;
        for v in values {
            self.jar.store(url, v, now);
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn exchange(
        &mut self,
        req: &Request,
        method: Method,
        url: &Url,
        key: &PoolKey,
        wire: &[u8],
        now: u64,
        end: u64,
        counters: &mut Counters,
    ) -> Result<Response, HttpError> {
        // A pooled connection first. One found busy or closed before the request was sent is
        // dropped for the next pooled one, or a fresh one; one that fails before any response
        // byte gets one transparent retry on a fresh connection (idempotent methods only).
        let mut pooled = if req.keep_alive {
            self.pool.checkout(key, now)
        } else {
            None
        };
        loop {
            let reused = pooled.is_some();
            let mut timings = Timings::default();
            let (conn, now) = match pooled.take() {
                Some(conn) => (conn, now),
                None => {
                    let conn = self.connect(url, req, end, &mut timings)?;
                    (conn, self.net.now_us())
                }
            };
            let r = self.send_and_read(
                conn,
                key,
                wire,
                method,
                req,
                now,
                end,
                reused,
                &mut timings,
                counters,
            );
            match r {
                Ok(mut resp) => {
                    resp.reused = reused;
                    return Ok(resp);
                }
                Err(Failure::NotIdle) => pooled = self.pool.checkout(key, now),
                Err(Failure::Stale(_))
                    if reused && method.idempotent() && !self.upload_touched() => {}
                Err(Failure::Stale(why)) => return Err(HttpError::Io(why)),
                Err(Failure::Http(e)) => return Err(e),
            }
        }
    }

    /// A connection for `url`: to its host, or to the proxy (through a `CONNECT` tunnel for
    /// `https`), TLS started for `https`.
    pub(crate) fn connect(
        &mut self,
        url: &Url,
        req: &Request,
        end: u64,
        timings: &mut Timings,
    ) -> Result<N::Conn, HttpError> {
        self.connect_offering(url, req, end, timings, &[])
            .map(|(c, _)| c)
    }

    /// `connect`, offering `alpn` on TLS; the protocol the server chose.
    pub(crate) fn connect_offering(
        &mut self,
        url: &Url,
        req: &Request,
        end: u64,
        timings: &mut Timings,
        alpn: &[String],
    ) -> Result<(N::Conn, Option<String>), HttpError> {
        let (host, port, what) = match &req.proxy {
            Some(p) => (p.host.as_str(), p.port, "proxy "),
            None => (url.host.as_str(), url.port, ""),
        };
        let ips = self.addresses(host, port, what, req, end, timings)?;
        let mut conn = self.dial(&ips, port, what, req, end, timings)?;
        if !url.tls {
            return Ok((conn, None));
        }
        if let Some(proxy) = &req.proxy {
            let t = self.net.now_us();
            let r = self.tunnel(&mut conn, proxy, url, req, end);
            timings.connect_us += self.net.now_us().saturating_sub(t);
            r?;
        }
        self.start_tls(conn, url, req, end, timings, alpn)
    }

    /// The addresses of `host` (an address literal is itself), of the source address's family
    /// when one is bound.
    #[allow(clippy::too_many_arguments)]
    fn addresses(
        &mut self,
        host: &str,
        port: u16,
        what: &str,
        req: &Request,
        end: u64,
        timings: &mut Timings,
    ) -> Result<Vec<IpAddr>, HttpError> {
        let given = req
            .resolve
            .iter()
            .find(|(h, p, _)| *p == port && h.eq_ignore_ascii_case(host));
        let ips: Vec<IpAddr> = match net_text::parse_ip(host) {
            _ if given.is_some() => given.map(|g| g.2.clone()).unwrap_or_default(),
            // An IPv4-mapped IPv6 address (`[::ffff:127.0.0.1]`) is the IPv4 address: an IPv6
            // socket cannot reach it on hosts that keep the families apart.
            Some(IpAddr::V6(v6)) if v6.to_ipv4_mapped().is_some() => {
                vec![IpAddr::V4(
                    v6.to_ipv4_mapped()
                        .unwrap_or(core::net::Ipv4Addr::UNSPECIFIED),
                )]
            }
            Some(ip) => vec![ip],
            None => {
                let (ms, clipped) = phase_ms(req.timeouts.dns_ms, end, self.net.now_us())?;
                let t = self.net.now_us();
                let r = self.net.resolve(host, ms);
                timings.dns_us = self.net.now_us().saturating_sub(t);
                match r {
                    Ok(ips) => ips,
                    Err(NetError::Timeout) => return Err(timeout(Phase::Dns, clipped)),
                    Err(NetError::AccessDenied) => {
                        return Err(HttpError::AccessDenied(format!("resolving {what}{host}")));
                    }
                    Err(e) => return Err(HttpError::Dns(format!("{what}{host}: {e}"))),
                }
            }
        };
        // A bound source address fixes the family, as `ip_version` does.
        let v4 = match (req.bind_ip, req.ip_version) {
            (Some(b), _) => Some(b.is_ipv4()),
            (None, Some(v)) => Some(v == 4),
            (None, None) => None,
        };
        let ips: Vec<IpAddr> = match v4 {
            Some(v4) => ips.into_iter().filter(|ip| ip.is_ipv4() == v4).collect(),
            None => ips,
        };
        if ips.is_empty() {
            let family = match (req.bind_ip, req.ip_version) {
                (None, Some(4)) => "IPv4",
                (None, Some(_)) => "IPv6",
                _ => "the source address's family",
            };
            return Err(HttpError::Dns(format!(
                "{what}{host} has no address of {family}"
            )));
        }
        Ok(ips)
    }

    /// A TCP connection to the first of `ips` that answers, from the bound source address.
    fn dial(
        &mut self,
        ips: &[IpAddr],
        port: u16,
        what: &str,
        req: &Request,
        end: u64,
        timings: &mut Timings,
    ) -> Result<N::Conn, HttpError> {
        let mut last = HttpError::Connect("no address".into());
        let (first, last_port) = req.local_ports.unwrap_or((0, 0));
        for (ip, local_port) in ips
            .iter()
            .flat_map(|ip| (first..=last_port).map(move |p| (ip, p)))
        {
            let (ms, clipped) = phase_ms(req.timeouts.connect_ms, end, self.net.now_us())?;
            let remote = SocketAddr::new(*ip, port);
            let shown = net_text::format_socket_addr(remote);
            let t = self.net.now_us();
            let r = self.net.connect(remote, req.bind_ip, local_port, ms);
            timings.connect_us = self.net.now_us().saturating_sub(t);
            match r {
                // That local port is taken: the next one of the range.
                Err(NetError::AddressUnavailable(m)) if local_port < last_port => {
                    last = HttpError::Connect(format!("source address: {m}"));
                }
                Ok(c) => return Ok(c),
                Err(NetError::Timeout) => last = timeout(Phase::Connect, clipped),
                Err(NetError::AccessDenied) => {
                    return Err(HttpError::AccessDenied(format!("{what}{shown}")));
                }
                Err(NetError::Refused) => {
                    last = HttpError::Connect(format!("{what}{shown}: connection refused"))
                }
                Err(NetError::Unreachable) => {
                    last = HttpError::Connect(format!("{what}{shown}: unreachable"))
                }
                Err(NetError::AddressUnavailable(m)) | Err(NetError::InvalidInput(m)) => {
                    return Err(HttpError::Connect(format!("source address: {m}")));
                }
                Err(e) => last = HttpError::Connect(format!("{what}{shown}: {e}")),
            }
        }
        Err(last)
    }

    /// A `CONNECT` tunnel through the proxy to `url`'s host and port (RFC 9110 section
    /// 9.3.6), bounded by the connect timeout: any 2xx opens it; anything else is the
    /// proxy's refusal, with its status.
    fn tunnel(
        &mut self,
        conn: &mut N::Conn,
        proxy: &crate::Proxy,
        url: &Url,
        req: &Request,
        end: u64,
    ) -> Result<(), HttpError> {
        let mut authority = String::new();
        if url.ipv6 {
            authority = format!("[{}]:{}", url.host, url.port);
        } else {
            authority.push_str(&url.host);
            authority.push(':');
            net_text::push_decimal(&mut authority, u64::from(url.port));
        }
        let refused = |why: &str| HttpError::Proxy(format!("CONNECT {authority}: {why}"));
        let (ms, clipped) = phase_ms(req.timeouts.connect_ms, end, self.net.now_us())?;
        let mut buf = match conn.exchange(
            &proxy.connect_request(&authority),
            HEAD_CHUNK,
            ms,
            ms,
            false,
        ) {
            Ok(ex) => ex.answer,
            Err(
                ExchangeError::Send(NetError::Timeout) | ExchangeError::Receive(NetError::Timeout),
            ) => {
                return Err(timeout(Phase::Connect, clipped));
            }
            Err(ExchangeError::Send(e) | ExchangeError::Receive(e)) => {
                return Err(refused(&format!("{e}")));
            }
            Err(ExchangeError::NotIdle) => return Err(refused("the connection closed")),
        };
        loop {
            if buf.is_empty() {
                return Err(refused("the proxy closed the connection without an answer"));
            }
            if let Some(head) = parse_head(&buf, req.max_header_bytes)? {
                return match head.status {
                    200..=299 if head.len == buf.len() => Ok(()),
                    200..=299 => Err(refused("bytes after the proxy's answer")),
                    s => Err(refused(&format!("the proxy answered {s} {}", head.reason))),
                };
            }
            let (ms, clipped) = phase_ms(req.timeouts.connect_ms, end, self.net.now_us())?;
            match conn.read(HEAD_CHUNK, ms) {
                Ok(more) if more.is_empty() => {
                    return Err(refused("the proxy closed the connection mid-answer"));
                }
                Ok(more) => buf.extend_from_slice(&more),
                Err(NetError::Timeout) => return Err(timeout(Phase::Connect, clipped)),
                Err(e) => return Err(refused(&format!("{e}"))),
            }
        }
    }

    /// The TLS handshake on a connection just made, bounded by the connect timeout.
    fn start_tls(
        &mut self,
        mut conn: N::Conn,
        url: &Url,
        req: &Request,
        end: u64,
        timings: &mut Timings,
        alpn: &[String],
    ) -> Result<(N::Conn, Option<String>), HttpError> {
        let (ms, clipped) = phase_ms(req.timeouts.connect_ms, end, self.net.now_us())?;
        let name = req.tls_server_name.as_deref().unwrap_or(&url.host);
        let t = self.net.now_us();
        let r = self.net.start_tls(&mut conn, name, ms, alpn);
        timings.tls_us = self.net.now_us().saturating_sub(t);
        match r {
            Ok(chosen) => Ok((conn, chosen)),
            Err(NetError::Timeout) => Err(timeout(Phase::Tls, clipped)),
            Err(NetError::Tls(reason, m)) => Err(HttpError::Tls(reason, m)),
            Err(e) => Err(HttpError::Tls(TlsReason::Other, format!("{e}"))),
        }
    }

    /// Send the request and read the first of its answer (a reused connection is checked
    /// first). An answer that comes while the request is still being written is read to its
    /// first complete head: interim heads (`100 Continue`, RFC 9110 section 15.2) mean the
    /// rest is sent; a final one (RFC 9112 section 9.5) means the rest is not, and sending is
    /// shut down. The answer's bytes so far, and whether the send ended early (such a
    /// connection is not reused). `counters.sent` gets what was actually written.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn send_piece<C: Conn>(
        &mut self,
        conn: &mut C,
        wire: &[u8],
        req: &Request,
        now: u64,
        end: u64,
        idle_check: bool,
        last: bool,
        counters: &mut Counters,
    ) -> Result<(Vec<u8>, bool), Failure> {
        let (write_ms, write_clipped) = phase_ms(req.timeouts.between_bytes_ms, end, now)?;
        let (read_ms, read_clipped) = match last {
            true => phase_ms(req.timeouts.first_byte_ms, end, now)?,
            // More of the request follows: an answer already there is read, none waited for.
            false => (0, false),
        };
        let clipped = (write_clipped, read_clipped);
        let mut off = 0usize;
        let mut idle = idle_check;
        let mut buf: Vec<u8> = Vec::new();
        loop {
            let r = match conn.exchange(&wire[off..], HEAD_CHUNK, write_ms, read_ms, idle) {
                Err(ExchangeError::Receive(NetError::WouldBlock)) if !last => Ok(Exchanged {
                    answer: Vec::new(),
                    unsent: 0,
                }),
                r => r,
            };
            let ex = exchanged(r, wire.len() - off, clipped, counters)?;
            off = wire.len() - ex.unsent;
            buf.extend_from_slice(&ex.answer);
            if ex.unsent == 0 || ex.answer.is_empty() {
                return Ok((buf, false));
            }
            idle = false;
            // The peer answered mid-send: read to its first non-interim head, or its end.
            let mut looked = 0usize;
            loop {
                match first_final_head(&buf[looked..], req.max_header_bytes)? {
                    HeadScan::Interim(n) if looked + n == buf.len() => break,
                    HeadScan::Interim(n) => looked += n,
                    HeadScan::Final => {
                        conn.shutdown_send();
                        return Ok((buf, true));
                    }
                    HeadScan::Partial => {
                        let (ms, c) =
                            phase_ms(req.timeouts.between_bytes_ms, end, self.net.now_us())?;
                        match conn.read(HEAD_CHUNK, ms) {
                            Ok(more) if more.is_empty() => return Ok((buf, true)),
                            Ok(more) => buf.extend_from_slice(&more),
                            Err(NetError::Timeout) => {
                                return Err(timeout(Phase::BetweenBytes, c).into());
                            }
                            Err(e) => {
                                return Err(HttpError::Io(format!(
                                    "reading the response head: {e}"
                                ))
                                .into());
                            }
                        }
                    }
                }
            }
            // Only interim heads so far: they are kept for the head loop, and the rest goes.
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn send_and_read(
        &mut self,
        mut conn: N::Conn,
        key: &PoolKey,
        wire: &[u8],
        method: Method,
        req: &Request,
        now: u64,
        end: u64,
        idle_check: bool,
        timings: &mut Timings,
        counters: &mut Counters,
    ) -> Result<Response, Failure> {
        let source = conn.local_addr();
        let sent_at = now;
        let (chunk, early) = self.send_request(
            &mut conn,
            wire,
            self.streaming,
            req,
            now,
            end,
            idle_check,
            counters,
        )?;
        if chunk.is_empty() {
            return Err(Failure::Stale("connection closed before a response".into()));
        }
        // The clock as of the last read: each read that returns reads it again.
        let mut r = Reading {
            sent_at,
            end,
            now: self.net.now_us(),
        };
        timings.first_byte_us = r.now.saturating_sub(sent_at);
        let (head, rest) = self.read_final_head(&mut conn, chunk, req, &mut r, counters)?;
        let framing = codec::framing(method, &head)?;
        let sink = BodySink::new(keeps_body(req.keep_body, req.decompress, &head.headers));
        let (body, trailers, clean) =
            self.read_body(&mut conn, (framing, sink), rest, req, &mut r, counters)?;
        let (body, body_len) = body.finish();
        self.done_us = r.now;
        if clean && !early && req.keep_alive && codec::keep_alive(&head, framing) {
            self.pool.checkin(key, conn, r.now);
        }
        Ok(Response {
            status: head.status,
            reason: head.reason,
            headers: head.headers,
            trailers,
            body,
            body_len,
            timings: *timings,
            bytes_sent: 0,
            bytes_received: 0,
            source,
            attempts: 0,
            redirects: 0,
            final_url: String::new(),
            reused: false,
        })
    }

    /// The final response head (informational ones skipped, but a 101), and what followed it
    /// in the reads.
    fn read_final_head(
        &self,
        conn: &mut N::Conn,
        mut chunk: Vec<u8>,
        req: &Request,
        r: &mut Reading,
        counters: &mut Counters,
    ) -> Result<(Head, Vec<u8>), Failure> {
        let mut buf: Vec<u8> = Vec::new();
        let mut interim = 0;
        loop {
            counters.received += chunk.len() as u64;
            if buf.is_empty() {
                buf = chunk;
            } else {
                buf.extend_from_slice(&chunk);
            }
            while let Some(h) = parse_head(&buf, req.max_header_bytes)? {
                if (100..200).contains(&h.status) && h.status != 101 {
                    interim += h.len;
                    interim_bound(interim, req.max_header_bytes)?;
                    buf.drain(..h.len);
                    continue;
                }
                // What follows the head, moved to the front of the buffer it came in.
                buf.drain(..h.len);
                return Ok((h, buf));
            }
            let (ms, clipped) = phase_ms(req.timeouts.between_bytes_ms, r.end, r.now)?;
            chunk = match conn.read(HEAD_CHUNK, ms) {
                Ok(c) => c,
                Err(NetError::Timeout) => return Err(timeout(Phase::BetweenBytes, clipped).into()),
                Err(e) => {
                    return Err(HttpError::Io(format!("reading the response head: {e}")).into());
                }
            };
            if chunk.is_empty() {
                return Err(
                    HttpError::Protocol("connection closed in the response head".into()).into(),
                );
            }
            r.now = self.net.now_us();
        }
    }

    /// The body as the framing says (from `rest`, then further reads) into the sink, its
    /// trailers, and whether the connection ended exactly at its end (only then is it kept).
    fn read_body(
        &self,
        conn: &mut N::Conn,
        (framing, mut body): (Framing, BodySink),
        mut rest: Vec<u8>,
        req: &Request,
        r: &mut Reading,
        counters: &mut Counters,
    ) -> Result<ReadBody, Failure> {
        let mut trailers = crate::Fields::new();
        let mut clean = true;
        match framing {
            Framing::None => clean = rest.is_empty(),
            Framing::Length(n) => {
                if n > req.max_body {
                    return Err(HttpError::TooLarge(format!(
                        "Content-Length {n} over the limit {}",
                        req.max_body
                    ))
                    .into());
                }
                // Grows as bytes arrive; a huge declared length reserves no more than 1 MiB.
                body.reserve((n as usize).min(1 << 20));
                loop {
                    // What is left, in full: a counted body may pass 4 GiB on a 32-bit target.
                    let left =
                        |b: &BodySink| usize::try_from(n - b.written()).unwrap_or(usize::MAX);
                    let take = rest.len().min(left(&body));
                    body.put(&rest[..take]).map_err(HttpError::from)?;
                    clean &= take == rest.len();
                    if body.written() == n {
                        break;
                    }
                    // All of `rest` was taken: a counted body's next bytes are dropped where
                    // they are read.
                    let next = (left(&body), body.counts());
                    let more =
                        self.next_bytes(conn, (&mut body, &mut rest), next, req, r, counters)?;
                    if more == 0 {
                        let got = body.written();
                        let e = format!("truncated body: {got} of {n} bytes");
                        return Err(HttpError::Protocol(e).into());
                    }
                }
            }
            Framing::Chunked => {
                let mut dec = ChunkedDecoder::new();
                loop {
                    let used = dec.feed(&rest, &mut body, req.max_body)?;
                    if dec.done() {
                        clean = used == rest.len();
                        break;
                    }
                    // All of `rest` was taken; a counted body's chunk data is dropped where
                    // it is read, never past the chunk.
                    let left = dec.data_left();
                    let skip = body.counts() && left > 0;
                    let want = if skip {
                        usize::try_from(left).unwrap_or(usize::MAX)
                    } else {
                        READ_CHUNK
                    };
                    let more = self.next_bytes(
                        conn,
                        (&mut body, &mut rest),
                        (want, skip),
                        req,
                        r,
                        counters,
                    )?;
                    if more == 0 {
                        return Err(HttpError::Protocol("truncated chunked body".into()).into());
                    }
                    if skip {
                        dec.skipped(more as u64)?;
                    }
                }
                trailers = dec.trailers;
            }
            Framing::UntilClose => loop {
                // Bytes skipped (a counted body) are in `written` already.
                within_max(body.written(), rest.len(), req.max_body)?;
                body.put(&rest).map_err(HttpError::from)?;
                let next = (READ_CHUNK, body.counts());
                if self.next_bytes(conn, (&mut body, &mut rest), next, req, r, counters)? == 0 {
                    break;
                }
            },
        }
        Ok((body, trailers, clean))
    }

    /// The body's next bytes (at most `want`), once all of `rest` was taken: into `rest`, or
    /// with `skip` (a counted body's bytes that nothing needs to parse) read and dropped where
    /// they arrive and counted into `body`, `rest` left empty. How many came; 0: the
    /// connection closed.
    fn next_bytes(
        &self,
        conn: &mut N::Conn,
        (body, rest): (&mut BodySink, &mut Vec<u8>),
        (want, skip): (usize, bool),
        req: &Request,
        r: &mut Reading,
        counters: &mut Counters,
    ) -> Result<usize, HttpError> {
        let (want, ms, clipped) = self.next_read(req, r, counters, want)?;
        let got = if skip {
            rest.clear();
            conn.skip(want, ms)
        } else {
            conn.read(want, ms).map(|bytes| {
                *rest = bytes;
                rest.len()
            })
        };
        r.now = self.net.now_us();
        let got = got.map_err(|e| body_error(e, clipped))?;
        counters.received += got as u64;
        if skip {
            body.counted(got as u64);
        }
        Ok(got)
    }

    /// How much the next read of the body may take (at most `want`, as `limit_rate` allows,
    /// after its wait), and how long it may wait (and whether the total deadline clipped it).
    fn next_read(
        &self,
        req: &Request,
        r: &mut Reading,
        counters: &Counters,
        want: usize,
    ) -> Result<(usize, u64, bool), HttpError> {
        let want = match req.limit_rate {
            0 => want.clamp(1, READ_CHUNK),
            rate => {
                self.throttle(rate, counters.received, r.sent_at, &mut r.now);
                want.clamp(1, (rate as usize / 8).clamp(1, READ_CHUNK))
            }
        };
        let (ms, clipped) = phase_ms(req.timeouts.between_bytes_ms, r.end, r.now)?;
        Ok((want, ms, clipped))
    }
}

/// A failed read of the body.
fn body_error(e: NetError, clipped: bool) -> HttpError {
    match e {
        NetError::Timeout => timeout(Phase::BetweenBytes, clipped),
        e => HttpError::Io(format!("reading the body: {e}")),
    }
}

/// A body read to its connection's close must stay within `max_body` with `more` bytes.
fn within_max(written: u64, more: usize, max_body: u64) -> Result<(), HttpError> {
    if written + more as u64 > max_body {
        let e = format!("response body over {max_body} bytes");
        return Err(HttpError::TooLarge(e));
    }
    Ok(())
}
