//! The host side of `wasi:tls` (0.2.0-draft), on rustls directly.
//!
//! wasmtime-wasi-tls runs each connection through tokio tasks: the handshake, a task that
//! reads ahead into a channel, a task for each write and each flush. Every one is a hand-off
//! between threads, and with a handful per request a new connection cost more than twice the
//! CPU of a native rustls client. Here the TLS streams do the work in the call that asks: a
//! read reads what the TCP stream has (without waiting), decrypts it, and returns the
//! plaintext; a write encrypts and writes to the TCP stream as far as it takes; the handshake
//! is driven by its future's pollable. A wait is a wait on the TCP stream's own pollable.
//!
//! The handshake's last flight is held for the guest's first write (or flush), so that it and
//! the first request leave in one segment: wasi:sockets has no TCP_NODELAY.

use std::io::Write;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use rustls::ClientConnection;
use wasmtime::component::{Resource, ResourceTable};
use wasmtime_wasi::async_trait;
use wasmtime_wasi::p2::{
    DynInputStream, DynOutputStream, DynPollable, InputStream, IoError, OutputStream, Pollable,
    StreamError, StreamResult,
};

use crate::tls::{InstanceTls, Negotiated, io_text, negotiated, tls_error_text};

mod plaintext;
use plaintext::Grow;
pub(crate) use plaintext::{Fill, read_buffered, ready_plaintext};

mod bindings {
    wasmtime::component::bindgen!({
        path: ["../wit/deps/io", "../wit/deps/tls", "../wit/tls-alpn"],
        world: "scheduler:tls-alpn/imports",
        with: {
            "wasi:io": wasmtime_wasi::p2::bindings::io,
            "wasi:tls/types.client-connection": super::Connection,
            "wasi:tls/types.client-handshake": super::Handshake,
            "wasi:tls/types.future-client-streams": super::FutureStreams,
        },
        imports: { default: trappable },
        require_store_data_send: true,
    });
}

/// An instance's TLS: its provider (configuration and session store) and its table.
pub struct TlsView<'a> {
    pub table: &'a mut ResourceTable,
    pub tls: &'a InstanceTls,
}

/// What the store's data gives `wasi:tls`.
pub trait TlsHostView: Send {
    fn tls_view(&mut self) -> TlsView<'_>;
}

struct HasTls;
impl wasmtime::component::HasData for HasTls {
    type Data<'a> = TlsView<'a>;
}

/// Add `wasi:tls/types` (its unstable `tls` feature on) to a linker that has wasmtime-wasi's
/// WASI, with reads straight into the guest's memory (`crate::direct_read`: its streams' and
/// the own TCP's).
pub fn add_to_linker<T: TlsHostView + crate::sockets::SocketsHostView + 'static>(
    linker: &mut wasmtime::component::Linker<T>,
) -> wasmtime::Result<()> {
    add_to_linker_copying(linker)?;
    crate::direct_read::add_to_linker(linker)
}

/// The same with wasmtime-wasi's `read` (a copy more a read), for comparison.
pub fn add_to_linker_copying<T: TlsHostView + 'static>(
    linker: &mut wasmtime::component::Linker<T>,
) -> wasmtime::Result<()> {
    let mut opts = bindings::wasi::tls::types::LinkOptions::default();
    opts.tls(true);
    bindings::wasi::tls::types::add_to_linker::<_, HasTls>(linker, &opts, T::tls_view)?;
    bindings::scheduler::tls_alpn::alpn::add_to_linker::<_, HasTls>(linker, T::tls_view)
}

/// Most ciphertext read from the TCP stream at once.
const READ_CHUNK: usize = 64 * 1024;
/// Room a TLS output stream offers a write (plaintext).
const WRITE_ROOM: usize = 64 * 1024;

/// A connection's TLS state, shared by its input and output streams and its resource.
pub(crate) struct Session {
    tls: ClientConnection,
    /// Ciphertext made and not yet written to the TCP stream.
    out: Vec<u8>,
    /// Ciphertext read and not yet taken by rustls.
    inbuf: Bytes,
    /// The TCP stream ended.
    eof: bool,
}

pub(crate) type Shared = Arc<Mutex<Session>>;

pub(crate) fn lock(s: &Shared) -> std::sync::MutexGuard<'_, Session> {
    s.lock().unwrap_or_else(|e| e.into_inner())
}

fn failed(text: String) -> StreamError {
    StreamError::LastOperationFailed(wasmtime::Error::msg(text))
}

impl Session {
    /// Ciphertext read and not yet taken by rustls: how many bytes.
    pub(crate) fn ciphertext_buffered(&self) -> usize {
        self.inbuf.len()
    }

    /// Move rustls's outgoing records to `out`.
    fn collect_out(&mut self) {
        while self.tls.wants_write() {
            if self.tls.write_tls(&mut self.out).is_err() {
                break;
            }
        }
    }

    /// Feed buffered ciphertext to rustls and process it.
    fn process(&mut self) -> Result<(), String> {
        while !self.inbuf.is_empty() && self.tls.wants_read() {
            let mut slice: &[u8] = &self.inbuf;
            let before = slice.len();
            match self.tls.read_tls(&mut slice) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) => return Err(format!("[tls:other] {e}")),
            }
            let used = before - slice.len();
            let _ = self.inbuf.split_to(used);
            if let Err(e) = self.tls.process_new_packets() {
                // The alert rustls owes the peer goes out with the next write.
                self.collect_out();
                return Err(tls_error_text(&e));
            }
        }
        if self.eof && self.inbuf.is_empty() {
            // Tell rustls the transport ended (a close_notify, or a close without one).
            let _ = self.tls.read_tls(&mut &[][..]);
            if let Err(e) = self.tls.process_new_packets() {
                return Err(tls_error_text(&e));
            }
        }
        self.collect_out();
        Ok(())
    }
}

/// Read what the TCP stream has now (without waiting) into the session's buffer.
fn fill(tcp: &mut DynInputStream, s: &mut Session) -> Result<(), String> {
    if !s.inbuf.is_empty() || s.eof {
        return Ok(());
    }
    match tcp.read(READ_CHUNK) {
        Ok(b) => s.inbuf = b,
        Err(StreamError::Closed) => s.eof = true,
        Err(e) => return Err(format!("{e}")),
    }
    Ok(())
}

/// Write the session's pending ciphertext to the TCP stream as far as it takes now.
fn push(tcp: &mut DynOutputStream, s: &mut Session) -> StreamResult<()> {
    while !s.out.is_empty() {
        let room = tcp.check_write()?;
        if room == 0 {
            break;
        }
        let n = room.min(s.out.len());
        // All of it (the usual case) is handed over as it is, not copied.
        let chunk: Vec<u8> = if n == s.out.len() {
            std::mem::take(&mut s.out)
        } else {
            s.out.drain(..n).collect()
        };
        tcp.write(Bytes::from(chunk))?;
    }
    Ok(())
}

/// `client-handshake`: a server name and the TCP streams, until `finish`.
pub struct Handshake {
    server_name: String,
    input: DynInputStream,
    output: DynOutputStream,
    /// The protocols offered by ALPN (none: no offer).
    alpn: Vec<String>,
}

/// The handshake in progress, driven by its pollable.
pub struct FutureStreams {
    state: FutureState,
}

enum FutureState {
    Running {
        session: Shared,
        input: DynInputStream,
        output: DynOutputStream,
        last: Arc<Mutex<Option<Negotiated>>>,
        counts: Arc<Mutex<crate::tls::TlsCounts>>,
    },
    Done(Result<(Shared, DynInputStream, DynOutputStream), String>),
    Taken,
}

impl FutureStreams {
    /// The handshake as far as it goes without waiting: `true` when it has ended (finished
    /// or failed: the state says which), `false` when it must wait for the TCP stream.
    fn step(&mut self) -> bool {
        let FutureState::Running {
            session,
            input,
            output,
            ..
        } = &mut self.state
        else {
            return true;
        };
        let r = (|| -> Result<bool, String> {
            let mut s = lock(session);
            loop {
                if !s.tls.is_handshaking() {
                    return Ok(true);
                }
                // What the handshake has to say goes before waiting for the peer.
                s.collect_out();
                push(output, &mut s).map_err(|e| io_text_stream(&e))?;
                fill(input, &mut s).map_err(|e| format!("[tls:handshake-failure] {e}"))?;
                if s.inbuf.is_empty() {
                    if s.eof {
                        return Err("[tls:handshake-failure] the server closed the connection during the handshake".into());
                    }
                    return Ok(false);
                }
                s.process()?;
            }
        })();
        match r {
            Ok(false) => false,
            Ok(true) => {
                self.finish_ok();
                true
            }
            Err(e) => {
                if let FutureState::Running { counts, .. } = &self.state
                    && let Ok(mut c) = counts.lock()
                {
                    c.failed += 1;
                }
                self.state = FutureState::Done(Err(e));
                true
            }
        }
    }

    fn finish_ok(&mut self) {
        let FutureState::Running {
            session,
            input,
            output,
            last,
            counts,
        } = std::mem::replace(&mut self.state, FutureState::Taken)
        else {
            return;
        };
        let n = negotiated(&lock(&session).tls);
        if let Ok(mut c) = counts.lock() {
            *c.negotiated
                .entry((n.version.clone(), n.cipher_suite.clone()))
                .or_default() += 1;
            c.resumed += u64::from(n.resumed);
        }
        if let Ok(mut l) = last.lock() {
            *l = Some(n);
        }
        // The last flight stays in `out`: the first write takes it along.
        lock(&session).collect_out();
        self.state = FutureState::Done(Ok((session, input, output)));
    }
}

fn io_text_stream(e: &StreamError) -> String {
    format!("[tls:handshake-failure] {e}")
}

#[async_trait]
impl Pollable for FutureStreams {
    async fn ready(&mut self) {
        loop {
            if self.step() {
                return;
            }
            // Waiting for the peer: on the TCP input, or for room on the TCP output.
            let FutureState::Running {
                session,
                input,
                output,
                ..
            } = &mut self.state
            else {
                return;
            };
            if lock(session).out.is_empty() {
                input.ready().await;
            } else {
                output.ready().await;
            }
        }
    }
}

/// `client-connection`: the session, for `close-output`.
pub struct Connection(Shared);

/// The plaintext input stream.
pub(crate) struct TlsInput {
    pub(crate) session: Shared,
    pub(crate) tcp: DynInputStream,
    /// Held by this stream alone: while it lives, the registry's entry is this stream.
    _alive: Arc<()>,
}

/// The plaintext output stream.
struct TlsOutput {
    session: Shared,
    tcp: DynOutputStream,
}

impl InputStream for TlsInput {
    fn read(&mut self, size: usize) -> StreamResult<Bytes> {
        if size == 0 {
            return Ok(Bytes::new());
        }
        let mut s = lock(&self.session);
        match ready_plaintext(&mut self.tcp, &mut s) {
            Ok(ready) => {
                let mut out = bytes::BytesMut::with_capacity(ready.min(size));
                read_buffered(
                    &mut s,
                    &mut Grow {
                        out: &mut out,
                        size,
                    },
                );
                Ok(out.freeze())
            }
            Err(answer) => answer,
        }
    }
}

/// Whether a read would return something now (plaintext, the end, or an error).
fn readable(s: &mut Session) -> bool {
    if s.eof || !s.inbuf.is_empty() {
        return true;
    }
    match s.tls.process_new_packets() {
        Ok(io) => io.plaintext_bytes_to_read() > 0 || io.peer_has_closed(),
        Err(_) => true,
    }
}

#[async_trait]
impl Pollable for TlsInput {
    async fn ready(&mut self) {
        loop {
            if readable(&mut lock(&self.session)) {
                return;
            }
            self.tcp.ready().await;
            let mut s = lock(&self.session);
            // Take what came; a part of a record leaves nothing to read yet: wait again.
            if fill(&mut self.tcp, &mut s).is_err() || s.process().is_err() {
                return;
            }
        }
    }
}

impl OutputStream for TlsOutput {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        let mut s = lock(&self.session);
        s.tls
            .writer()
            .write_all(&bytes)
            .map_err(|e| failed(io_text(&e)))?;
        s.collect_out();
        push(&mut self.tcp, &mut s)
    }

    fn flush(&mut self) -> StreamResult<()> {
        let mut s = lock(&self.session);
        s.collect_out();
        push(&mut self.tcp, &mut s)?;
        if s.out.is_empty() {
            self.tcp.flush()?;
        }
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        let mut s = lock(&self.session);
        push(&mut self.tcp, &mut s)?;
        if !s.out.is_empty() {
            return Ok(0);
        }
        match self.tcp.check_write()? {
            0 => Ok(0),
            _ => Ok(WRITE_ROOM),
        }
    }
}

#[async_trait]
impl Pollable for TlsOutput {
    async fn ready(&mut self) {
        loop {
            {
                let mut s = lock(&self.session);
                if push(&mut self.tcp, &mut s).is_err() || s.out.is_empty() {
                    break;
                }
            }
            self.tcp.ready().await;
        }
        self.tcp.ready().await;
    }
}

use bindings::wasi::tls::types::{
    Host, HostClientConnection, HostClientHandshake, HostFutureClientStreams,
};

impl Host for TlsView<'_> {}

impl HostClientHandshake for TlsView<'_> {
    fn new(
        &mut self,
        server_name: String,
        input: Resource<DynInputStream>,
        output: Resource<DynOutputStream>,
    ) -> wasmtime::Result<Resource<Handshake>> {
        let input = self.table.delete(input)?;
        let output = self.table.delete(output)?;
        Ok(self.table.push(Handshake {
            server_name,
            input,
            output,
            alpn: Vec::new(),
        })?)
    }

    fn finish(&mut self, this: Resource<Handshake>) -> wasmtime::Result<Resource<FutureStreams>> {
        let h = self.table.delete(this)?;
        let state = match self.tls.client_connection(&h.server_name, &h.alpn) {
            Ok(tls) => FutureState::Running {
                session: Arc::new(Mutex::new(Session {
                    tls,
                    out: Vec::new(),
                    inbuf: Bytes::new(),
                    eof: false,
                })),
                input: h.input,
                output: h.output,
                last: self.tls.last.clone(),
                counts: self.tls.counts.clone(),
            },
            Err(e) => FutureState::Done(Err(e)),
        };
        Ok(self.table.push(FutureStreams { state })?)
    }

    fn drop(&mut self, this: Resource<Handshake>) -> wasmtime::Result<()> {
        self.table.delete(this)?;
        Ok(())
    }
}

impl HostFutureClientStreams for TlsView<'_> {
    fn subscribe(
        &mut self,
        this: Resource<FutureStreams>,
    ) -> wasmtime::Result<Resource<DynPollable>> {
        wasmtime_wasi::p2::subscribe(self.table, this)
    }

    #[allow(clippy::type_complexity)]
    fn get(
        &mut self,
        this: Resource<FutureStreams>,
    ) -> wasmtime::Result<
        Option<
            Result<
                Result<
                    (
                        Resource<Connection>,
                        Resource<DynInputStream>,
                        Resource<DynOutputStream>,
                    ),
                    Resource<IoError>,
                >,
                (),
            >,
        >,
    > {
        let future = self.table.get_mut(&this)?;
        if !future.step() {
            return Ok(None);
        }
        match std::mem::replace(&mut future.state, FutureState::Taken) {
            FutureState::Done(Ok((session, input, output))) => {
                let conn = self.table.push(Connection(session.clone()))?;
                let alive = Arc::new(());
                let input = Box::new(TlsInput {
                    session: session.clone(),
                    tcp: input,
                    _alive: alive.clone(),
                });
                let at: *const TlsInput = &*input;
                let output: DynOutputStream = Box::new(TlsOutput {
                    session,
                    tcp: output,
                });
                let input = self.table.push_child(input as DynInputStream, &conn)?;
                self.tls.readers.lock().register(input.rep(), at, &alive);
                let output = self.table.push_child(output, &conn)?;
                Ok(Some(Ok(Ok((conn, input, output)))))
            }
            FutureState::Done(Err(text)) => {
                let e = self.table.push(IoError::msg(text))?;
                Ok(Some(Ok(Err(e))))
            }
            FutureState::Taken => Ok(Some(Err(()))),
            running @ FutureState::Running { .. } => {
                future.state = running;
                Ok(None)
            }
        }
    }

    fn drop(&mut self, this: Resource<FutureStreams>) -> wasmtime::Result<()> {
        self.table.delete(this)?;
        Ok(())
    }
}

impl HostClientConnection for TlsView<'_> {
    /// `close_notify`, written with the output stream's next write, flush or wait.
    fn close_output(&mut self, this: Resource<Connection>) -> wasmtime::Result<()> {
        let conn = self.table.get(&this)?;
        let mut s = lock(&conn.0);
        s.tls.send_close_notify();
        s.collect_out();
        Ok(())
    }

    fn drop(&mut self, this: Resource<Connection>) -> wasmtime::Result<()> {
        self.table.delete(this)?;
        Ok(())
    }
}

impl bindings::scheduler::tls_alpn::alpn::Host for TlsView<'_> {
    fn offer(
        &mut self,
        handshake: Resource<Handshake>,
        protocols: Vec<String>,
    ) -> wasmtime::Result<bool> {
        self.table.get_mut(&handshake)?.alpn = protocols;
        Ok(true)
    }

    fn chosen(&mut self, connection: Resource<Connection>) -> wasmtime::Result<Option<String>> {
        let conn = self.table.get(&connection)?;
        let s = lock(&conn.0);
        Ok(s.tls
            .alpn_protocol()
            .map(|p| String::from_utf8_lossy(p).into_owned()))
    }
}
