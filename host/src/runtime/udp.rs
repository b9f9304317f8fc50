//! A UDP action's exchange through the instance's socket component: bind the user's address,
//! send, and (for send-reply) wait for the target's datagram, trying again as asked.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant as Clock};

use wasmtime::Store;
use wasmtime::component::ResourceAny;

use super::{Instance, UserCtx, fail, sock, socket_error_text};

/// A UDP action's exchange, as `Instance::udp` runs it.
pub struct UdpExchange<'a> {
    pub target: SocketAddr,
    pub bind: Option<IpAddr>,
    pub payload: &'a [u8],
    /// Wait for a reply (`udp.send-reply`), or only send (`udp.send`).
    pub reply: bool,
    pub timeout_ms: u64,
    pub retries: u32,
    pub backoff_ms: u64,
    pub max_reply: u32,
}

/// Why a UDP exchange failed: its kind in the report (`timeout(udp-reply)`, `udp-send`, ...)
/// and the detail.
#[derive(Debug)]
pub struct UdpFailure {
    pub kind: &'static str,
    pub detail: String,
}

/// What a UDP exchange did: the reply (send-reply), bytes each way, tries, the time from the
/// last send to its reply, and the local address it went from.
#[derive(Debug, Default)]
pub struct UdpOutcome {
    pub reply: Option<Vec<u8>>,
    pub bytes_sent: u64,
    pub bytes_received: u64,
    pub attempts: u32,
    pub latency_us: u64,
    pub local: Option<String>,
}

/// Inside an exchange: `Err(Ok(why))` is the action's failure, `Err(Err(why))` a trap.
type Step<T> = Result<T, Result<UdpFailure, String>>;

fn failure(kind: &'static str, detail: String) -> UdpFailure {
    UdpFailure { kind, detail }
}

fn trap(what: &'static str) -> impl Fn(wasmtime::Error) -> Result<UdpFailure, String> {
    move |e| Err(super::fail(what)(e))
}

fn address(a: SocketAddr) -> sock::SocketAddress {
    sock::SocketAddress {
        host: a.ip().to_string(),
        port: a.port(),
    }
}

impl Instance {
    /// One UDP exchange through the instance's socket component: bind `bind` (the user's
    /// address) if given, send `payload` to `target`, and with `reply` wait up to `timeout_ms`
    /// for a datagram from the target (others are dropped), trying `1 + retries` times with
    /// `backoff_ms` between. The socket is closed whatever happens.
    pub async fn udp(
        &mut self,
        x: &UdpExchange<'_>,
    ) -> Result<Result<UdpOutcome, UdpFailure>, String> {
        let Some(sockets) = &self.sockets else {
            return Ok(Err(failure(
                "udp-socket",
                "this artifact does not export the socket interface".into(),
            )));
        };
        let api = sockets.scheduler_core_libs_socket().clone();
        let s = api.socket();
        let store = &mut self.store;
        let family = if x.target.is_ipv4() {
            sock::AddressFamily::Ipv4
        } else {
            sock::AddressFamily::Ipv6
        };
        let handle = match api
            .call_create_socket(&mut *store, family, sock::Protocol::Udp)
            .await
            .map_err(fail("create-socket trapped"))?
        {
            Ok(h) => h,
            Err(e) => return Ok(Err(failure("udp-socket", socket_error_text(&e)))),
        };
        let result = exchange(&s, store, handle, x).await;
        let _ = s.call_close(&mut *store, handle).await;
        let _ = handle.resource_drop_async(&mut *store).await;
        match result {
            Ok(o) => Ok(Ok(o)),
            Err(Ok(e)) => Ok(Err(e)),
            Err(Err(trap)) => Err(trap),
        }
    }
}

/// Bind, then each try: send, and wait for the reply when one is asked for.
async fn exchange(
    s: &sock::GuestSocket<'_>,
    store: &mut Store<UserCtx>,
    handle: ResourceAny,
    x: &UdpExchange<'_>,
) -> Step<UdpOutcome> {
    if let Some(ip) = x.bind {
        s.call_bind(&mut *store, handle, &address(SocketAddr::new(ip, 0)))
            .await
            .map_err(trap("bind trapped"))?
            .map_err(|e| {
                let why = format!("{ip}: {}", socket_error_text(&e));
                Ok(failure("udp-bind", why))
            })?;
    }
    let mut out = UdpOutcome::default();
    for attempt in 0..=x.retries {
        if attempt > 0 && x.backoff_ms > 0 {
            tokio::time::sleep(Duration::from_millis(x.backoff_ms)).await;
        }
        out.attempts = attempt + 1;
        let start = Clock::now();
        s.call_send_to(&mut *store, handle, x.payload, &address(x.target))
            .await
            .map_err(trap("send-to trapped"))?
            .map_err(|e| {
                let why = format!("to {}: {}", x.target, socket_error_text(&e));
                Ok(failure("udp-send", why))
            })?;
        out.bytes_sent += x.payload.len() as u64;
        if out.local.is_none()
            && let Ok(Ok(a)) = s.call_get_local_address(&mut *store, handle).await
        {
            out.local = Some(format!("{}:{}", a.host, a.port));
        }
        if !x.reply {
            out.latency_us = start.elapsed().as_micros() as u64;
            return Ok(out);
        }
        if let Some(data) = reply(s, store, handle, x, start, &mut out).await? {
            out.latency_us = start.elapsed().as_micros() as u64;
            out.reply = Some(data);
            return Ok(out);
        }
    }
    let why = format!(
        "no reply from {} within {} ms ({} tries)",
        x.target,
        x.timeout_ms,
        x.retries + 1
    );
    Err(Ok(failure("timeout(udp-reply)", why)))
}

/// The target's reply to the send at `start`, within the timeout (datagrams from others are
/// dropped, counted as received); None when it does not come.
async fn reply(
    s: &sock::GuestSocket<'_>,
    store: &mut Store<UserCtx>,
    handle: ResourceAny,
    x: &UdpExchange<'_>,
    start: Clock,
    out: &mut UdpOutcome,
) -> Step<Option<Vec<u8>>> {
    let deadline = start + Duration::from_millis(x.timeout_ms);
    loop {
        let left = deadline.saturating_duration_since(Clock::now());
        if left.is_zero() {
            return Ok(None);
        }
        s.call_set_read_timeout(&mut *store, handle, (left.as_millis() as u64).max(1))
            .await
            .map_err(trap("set-read-timeout trapped"))?
            .map_err(|e| Ok(failure("udp-receive", socket_error_text(&e))))?;
        let got = s
            .call_receive_from(&mut *store, handle, x.max_reply)
            .await
            .map_err(trap("receive-from trapped"))?;
        match got {
            Ok((data, from)) => {
                out.bytes_received += data.len() as u64;
                let from_target = from.port == x.target.port()
                    && from.host.parse::<IpAddr>().ok() == Some(x.target.ip());
                if from_target {
                    return Ok(Some(data));
                }
            }
            Err(sock::SocketError::Timeout(_)) => return Ok(None),
            // An ICMP port unreachable comes back as a refusal: the next try.
            Err(sock::SocketError::ConnectionRefused) => {
                tokio::time::sleep(left.min(Duration::from_millis(10))).await;
            }
            Err(e) => return Err(Ok(failure("udp-receive", socket_error_text(&e)))),
        }
    }
}
