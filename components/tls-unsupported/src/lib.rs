//! `wasi:tls/types` for hosts without TLS: the portable artifact's socket component imports
//! `wasi:tls`, and this satisfies the import inside the composition. A handshake never starts:
//! its future is ready at once and reports its result as taken, which the socket component
//! turns into its typed `tls` error with the reason `unsupported`. Plain TCP (and so `http://`)
//! is untouched.

#![cfg_attr(target_arch = "wasm32", no_std)]

extern crate alloc;

use guest_rt as _;

wit_bindgen::generate!({
    path: ["../../wit", "../../wit/tls-alpn", "../../wit/tls-unsupported"],
    world: "scheduler:tls-unsupported/tls-unsupported",
    features: ["tls"],
    with: {
        "wasi:io/streams@0.2.12": wasip2::io::streams,
        "wasi:io/poll@0.2.12": wasip2::io::poll,
        "wasi:io/error@0.2.12": wasip2::io::error,
    },
});

use exports::wasi::tls::types::{
    ClientConnection, ClientHandshake, FutureClientStreams, Guest, GuestClientConnection,
    GuestClientHandshake, GuestFutureClientStreams, InputStream, IoError, OutputStream, Pollable,
};

struct Component;
export!(Component);

/// No ALPN here either.
impl exports::scheduler::tls_alpn::alpn::Guest for Component {
    fn offer(
        _handshake: exports::scheduler::tls_alpn::alpn::ClientHandshakeBorrow<'_>,
        _protocols: alloc::vec::Vec<alloc::string::String>,
    ) -> bool {
        false
    }

    fn chosen(
        _connection: exports::scheduler::tls_alpn::alpn::ClientConnectionBorrow<'_>,
    ) -> Option<alloc::string::String> {
        None
    }
}

impl Guest for Component {
    type ClientHandshake = Handshake;
    type ClientConnection = Connection;
    type FutureClientStreams = Refused;
}

/// The streams handed over are dropped with it (the connection closes).
pub struct Handshake;

impl GuestClientHandshake for Handshake {
    fn new(
        _server_name: alloc::string::String,
        _input: InputStream,
        _output: OutputStream,
    ) -> Self {
        Handshake
    }

    fn finish(_this: ClientHandshake) -> FutureClientStreams {
        FutureClientStreams::new(Refused)
    }
}

/// Never made: no handshake succeeds.
pub struct Connection;

impl GuestClientConnection for Connection {
    fn close_output(&self) {}
}

pub struct Refused;

impl GuestFutureClientStreams for Refused {
    fn subscribe(&self) -> Pollable {
        wasip2::clocks::monotonic_clock::subscribe_duration(0)
    }

    #[allow(clippy::type_complexity)]
    fn get(
        &self,
    ) -> Option<Result<Result<(ClientConnection, InputStream, OutputStream), IoError>, ()>> {
        Some(Err(()))
    }
}
