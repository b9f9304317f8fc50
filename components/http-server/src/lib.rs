//! The http-server component: `scheduler:server/http-server` over the socket component. One
//! instance serves one address: a listener and its connections in one loop, waiting on all of
//! them at once (`wait-readable`), reading what came, answering through `http-server-core`,
//! sending answers when they are due (a route's delay, a fault's latency), and closing slow
//! and idle clients.

#![cfg_attr(target_arch = "wasm32", no_std)]

extern crate alloc;

mod disk;

use alloc::collections::{BTreeMap, VecDeque};
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use guest_rt::Global;
use http_server_core::Config;
use http_server_core::conn::{Conn, Output, Server};
use socket_api::{Socket, SocketError, raw};

wit_bindgen::generate!({
    path: ["../../wit", "../../wit/server"],
    world: "scheduler:server/http-server-component",
    with: {
        "scheduler:core-libs/socket@0.1.0": socket_api::raw,
    },
});

use exports::scheduler::server::http_server::{Guest, Served};

/// How long a send may wait for a slow reader before the connection is dropped.
const WRITE_MS: u64 = 5_000;
/// Bytes read per call.
const READ_CHUNK: u32 = 64 * 1024;

struct Client {
    sock: Socket,
    peer: String,
    /// The client's address without its port (for the counts by client).
    peer_ip: String,
    conn: Conn,
    /// Answers not yet sent: (due, bytes, close after, status).
    queue: VecDeque<(u64, Vec<u8>, bool, Option<u16>)>,
    /// When it last sent us anything (for the idle timeout).
    last_ms: u64,
    /// When the request under way began (for the slow-client timeout).
    since_ms: Option<u64>,
    dead: bool,
}

#[derive(Default)]
struct Counts {
    connections: u64,
    requests: u64,
    statuses: BTreeMap<u16, u64>,
    resets: u64,
    bytes_in: u64,
    bytes_out: u64,
    log: Vec<String>,
    peers: BTreeMap<String, u64>,
}

struct State {
    listener: Socket,
    server: Server,
    clients: Vec<Client>,
    counts: Counts,
    /// The HTTP date and the second it is for.
    date: (u64, String),
}

static STATE: Global<Option<State>> = Global::new(|| None);

fn now_ms() -> u64 {
    wasip2::clocks::monotonic_clock::now() / 1_000_000
}

fn error(e: SocketError) -> String {
    socket_api::describe(&e)
}

/// The HTTP date now, formatted again only when the second has changed (`cache` holds the
/// last one and its second).
fn http_date(cache: &mut (u64, String)) -> String {
    let secs = wasip2::clocks::wall_clock::now().seconds;
    if cache.0 != secs {
        *cache = (secs, http_core::date::format_http_date(secs));
    }
    cache.1.clone()
}

impl State {
    fn accept_all(&mut self, now: u64) {
        while let Ok((sock, peer)) = self.listener.accept() {
            if self.clients.len() >= self.server.config.limits.max_connections {
                continue; // dropped: closed at once
            }
            let _ = sock.handle().set_read_timeout(0);
            let _ = sock.handle().set_write_timeout(WRITE_MS);
            self.counts.connections += 1;
            self.clients.push(Client {
                sock,
                peer: net_text::format_socket_addr(peer),
                peer_ip: net_text::format_ip(peer.ip()),
                conn: Conn::default(),
                queue: VecDeque::new(),
                last_ms: now,
                since_ms: None,
                dead: false,
            });
        }
    }

    /// Read what client `i` has sent and answer it. A read shorter than asked for took all
    /// the socket held, so it is the last: the wait that follows is level-triggered and
    /// reports the client again if more comes (one `try-receive` a request, not two).
    fn read(&mut self, i: usize, now: u64, date: &str) {
        let State {
            clients,
            server,
            counts,
            ..
        } = self;
        let c = &mut clients[i];
        loop {
            match c.sock.try_recv_vec(READ_CHUNK) {
                Ok(data) if data.is_empty() => {
                    c.dead = c.queue.is_empty();
                    if !c.dead {
                        c.conn.closing = true;
                    }
                    return;
                }
                Ok(data) => {
                    counts.bytes_in += data.len() as u64;
                    c.last_ms = now;
                    c.since_ms.get_or_insert(now);
                    for o in c.conn.feed(&data, server, now, date, &c.peer) {
                        take(c, o, counts);
                    }
                    if !c.conn.mid_request() {
                        c.since_ms = None;
                    }
                    if data.len() < READ_CHUNK as usize {
                        return;
                    }
                }
                Err(SocketError::WouldBlock) => return,
                Err(_) => {
                    c.dead = true;
                    return;
                }
            }
        }
    }

    /// Send what is due, close what is done, answer slow clients, drop idle ones; the next
    /// time something is due.
    fn tend(&mut self, now: u64) -> Option<u64> {
        let limits = self.server.config.limits.clone();
        let State {
            clients,
            counts,
            date,
            ..
        } = self;
        let mut next: Option<u64> = None;
        for c in clients.iter_mut() {
            if let Some(since) = c.since_ms
                && now.saturating_sub(since) >= limits.head_timeout_ms
                && !c.conn.closing
            {
                // The clock is read only when a slow client is answered.
                let o = c.conn.too_slow(now, &http_date(date));
                take(c, o, counts);
            }
            flush(c, now, counts);
            if c.queue.is_empty() && now.saturating_sub(c.last_ms) >= limits.idle_timeout_ms {
                c.dead = true;
            }
            let due = c.queue.front().map(|q| q.0);
            let slow = c.since_ms.map(|s| s + limits.head_timeout_ms);
            let idle = c.last_ms + limits.idle_timeout_ms;
            for t in [due, slow, Some(idle)].into_iter().flatten() {
                next = Some(next.map_or(t, |n: u64| n.min(t)));
            }
        }
        self.clients.retain(|c| !c.dead);
        next
    }
}

/// Queue an output of a connection.
fn take(c: &mut Client, o: Output, counts: &mut Counts) {
    match o {
        Output::Send {
            bytes,
            at_ms,
            close,
            status,
        } => c.queue.push_back((at_ms, bytes, close, status)),
        Output::Reset => {
            counts.resets += 1;
            c.dead = true;
        }
        Output::Log(line) => {
            if counts.log.len() < 10_000 {
                counts.log.push(line);
            }
        }
    }
}

/// Send a connection's due answers; one whose send fails or that ends with `close` is done.
fn flush(c: &mut Client, now: u64, counts: &mut Counts) {
    while let Some((at, _, _, _)) = c.queue.front() {
        if *at > now || c.dead {
            return;
        }
        let Some((_, bytes, close, status)) = c.queue.pop_front() else {
            return;
        };
        if let Some(s) = status {
            counts.requests += 1;
            *counts.statuses.entry(s).or_default() += 1;
            match counts.peers.get_mut(&c.peer_ip) {
                Some(n) => *n += 1,
                None => {
                    counts.peers.insert(c.peer_ip.clone(), 1);
                }
            }
        }
        match c.sock.send(&bytes) {
            Ok(n) => counts.bytes_out += n as u64,
            Err(_) => c.dead = true,
        }
        if close {
            let _ = c.sock.shutdown(socket_api::ShutdownType::Send);
            c.dead = true;
        }
    }
    if c.queue.is_empty() && c.conn.closing {
        c.dead = true;
    }
}

fn start(config: &str) -> Result<String, String> {
    let config = Config::parse(config)?;
    let ip = net_text::parse_ip(&config.address)
        .ok_or_else(|| format!("address: {:?} is not an IP address", config.address))?;
    let listener = Socket::tcp_for(ip).map_err(error)?;
    let _ = listener.handle().set_reuse_address(true);
    listener
        .bind_to_ip(ip, config.port)
        .map_err(|e| format!("bind {}:{}: {}", config.address, config.port, error(e)))?;
    listener.listen(1024).map_err(error)?;
    listener.handle().set_read_timeout(0).map_err(error)?;
    let local = listener.handle().get_local_address().map_err(error)?;
    let bound = match ip {
        core::net::IpAddr::V6(_) => format!("[{}]:{}", local.host, local.port),
        core::net::IpAddr::V4(_) => format!("{}:{}", local.host, local.port),
    };
    let seed = wasip2::clocks::monotonic_clock::now() ^ u64::from(local.port) << 32;
    let mut server = Server::new(config, bound.clone(), seed);
    server.files = alloc::boxed::Box::new(disk::Disk::default());
    let state = State {
        listener,
        server,
        clients: Vec::new(),
        counts: Counts::default(),
        date: (0, String::new()),
    };
    *STATE.get() = Some(state);
    Ok(bound)
}

fn serve(st: &mut State, ms: u64) -> Result<Served, String> {
    let end = now_ms().saturating_add(ms);
    loop {
        let now = now_ms();
        let next = st.tend(now);
        if now >= end {
            break;
        }
        let until = next.map_or(end, |n| n.min(end)).max(now);
        let mut handles: Vec<&raw::Socket> = Vec::with_capacity(st.clients.len() + 1);
        handles.push(st.listener.handle());
        handles.extend(st.clients.iter().map(|c| c.sock.handle()));
        let ready = raw::wait_readable(&handles, until - now).map_err(error)?;
        drop(handles);
        let now = now_ms();
        // One clock read for every client answered after this wait.
        let date = http_date(&mut st.date);
        for i in ready {
            match i {
                0 => st.accept_all(now),
                i => st.read(i as usize - 1, now, &date),
            }
        }
    }
    let c = &mut st.counts;
    Ok(Served {
        connections: c.connections,
        requests: c.requests,
        statuses: c.statuses.iter().map(|(k, v)| (*k, *v)).collect(),
        resets: c.resets,
        bytes_in: c.bytes_in,
        bytes_out: c.bytes_out,
        log: core::mem::take(&mut c.log),
        peers: c.peers.iter().map(|(k, v)| (k.clone(), *v)).collect(),
    })
}

struct Component;
export!(Component);

impl Guest for Component {
    fn start(config: String) -> Result<String, String> {
        if STATE.get().is_some() {
            return Err("already started".to_string());
        }
        start(&config)
    }

    fn serve(ms: u64) -> Result<Served, String> {
        let mut st = STATE.get();
        let Some(st) = st.as_mut() else {
            return Err("not started".to_string());
        };
        serve(st, ms.min(3_600_000))
    }

    fn stop() {
        *STATE.get() = None;
    }
}
