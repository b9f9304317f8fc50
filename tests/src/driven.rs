//! The artifact and the socket component driven as the scheduler drives them: async calls on a
//! current-thread tokio runtime, in the calling thread. The sync embedding (`Executor`,
//! `SocketGuest`) blocks on wasmtime-wasi's own multi-threaded runtime at every wait, so each
//! wait is a wake-up across threads: right for tests, not what a run costs. The benchmarks
//! measure through these.

use std::sync::OnceLock;

use compose::sockets::SocketsImpl;
use compose::tls::TlsSettings;
use wasmtime::Store;
use wasmtime::component::{Linker, ResourceAny};

use crate::{
    Ctx, engine, executor_component, loopback_policy, socket_component, tls_ctx, wasi_ctx,
};

pub mod executor_bindings {
    wasmtime::component::bindgen!({
        path: ["../wit", "../wit/executor"],
        world: "scheduler:executor/scheduler-executor",
        imports: { default: async },
        exports: { default: async },
        with: { "wasi:io": wasmtime_wasi::p2::bindings::io },
    });
}

pub mod socket_bindings {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "socket-component",
        imports: { default: async },
        exports: { default: async },
    });
}

pub use executor_bindings::exports::scheduler::executor::executor::{
    ActionError, HttpMethod, Outcome,
};
pub use socket_bindings::exports::scheduler::core_libs::socket::{
    AddressFamily, Protocol, ShutdownType, SocketAddress, SocketError,
};

/// WASI as the scheduler links it (async, output streams' drops bounded, TCP the host's own
/// or wasmtime-wasi's) and the host's wasi:tls (its reads straight into the guest's memory,
/// or with `copying` wasmtime-wasi's `read`, for comparison); each made once.
fn linker(sockets: SocketsImpl, copying: bool) -> &'static Linker<Ctx> {
    static OWN: OnceLock<Linker<Ctx>> = OnceLock::new();
    static WASMTIME: OnceLock<Linker<Ctx>> = OnceLock::new();
    static COPYING: OnceLock<Linker<Ctx>> = OnceLock::new();
    let cell = match (sockets, copying) {
        (_, true) => &COPYING,
        (SocketsImpl::Own, false) => &OWN,
        (SocketsImpl::Wasmtime, false) => &WASMTIME,
    };
    cell.get_or_init(|| {
        let mut linker = Linker::new(engine());
        wasmtime_wasi::p2::add_to_linker_async(&mut linker).expect("wasi linker");
        if sockets == SocketsImpl::Own {
            compose::sockets::add_to_linker(&mut linker).expect("TCP linker");
        }
        compose::bound_stream_drops(&mut linker).expect("stream drops");
        if copying {
            compose::tls::add_to_linker_copying(&mut linker).expect("wasi:tls linker");
        } else {
            compose::tls::add_to_linker(&mut linker).expect("wasi:tls linker");
        }
        linker
    })
}

/// The TCP `SCHEDULER_SOCKETS` names, as the scheduler reads it.
pub fn sockets_for_run() -> SocketsImpl {
    SocketsImpl::for_run().expect("SCHEDULER_SOCKETS")
}

/// A current-thread runtime with I/O and time, as each of the scheduler's cores runs.
fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// One instance of the artifact.
pub struct DrivenExecutor {
    rt: tokio::runtime::Runtime,
    store: Store<Ctx>,
    bindings: executor_bindings::SchedulerExecutor,
}

impl DrivenExecutor {
    pub fn new() -> Self {
        Self::with_tls(&TlsSettings::default())
    }

    /// An executor whose TLS is configured with `settings`.
    pub fn with_tls(settings: &TlsSettings) -> Self {
        Self::with(settings, sockets_for_run())
    }

    /// An executor whose TLS is configured with `settings`, on `sockets`' TCP.
    pub fn with(settings: &TlsSettings, sockets: SocketsImpl) -> Self {
        Self::linked(settings, linker(sockets, false))
    }

    /// The same on the own TCP, its TLS reads wasmtime-wasi's (a copy more), for comparison.
    pub fn with_copying_tls_reads(settings: &TlsSettings) -> Self {
        Self::linked(settings, linker(SocketsImpl::Own, true))
    }

    fn linked(settings: &TlsSettings, linker: &Linker<Ctx>) -> Self {
        let rt = runtime();
        let ctx = Ctx::with_tls(wasi_ctx(loopback_policy()), tls_ctx(settings).0);
        let mut store = Store::new(engine(), ctx);
        let bindings = rt
            .block_on(executor_bindings::SchedulerExecutor::instantiate_async(
                &mut store,
                executor_component(),
                linker,
            ))
            .expect("instantiate executor");
        DrivenExecutor {
            rt,
            store,
            bindings,
        }
    }

    /// Run one action; `params` is the with-params object.
    pub fn run(
        &mut self,
        call: HttpMethod,
        params: serde_json::Value,
    ) -> Result<Outcome, ActionError> {
        let action = executor_bindings::exports::scheduler::executor::executor::Action {
            id: "bench-action".into(),
            call,
            with_params: params.to_string(),
            exports: Vec::new(),
        };
        let exec = self.bindings.scheduler_executor_executor();
        self.rt
            .block_on(exec.call_execute_action(&mut self.store, &action))
            .expect("call")
    }
}

impl Default for DrivenExecutor {
    fn default() -> Self {
        Self::new()
    }
}

/// One instance of the socket component.
pub struct DrivenSocket {
    rt: tokio::runtime::Runtime,
    store: Store<Ctx>,
    bindings: socket_bindings::SocketComponent,
}

type R<T> = Result<T, SocketError>;

/// `host:port` as the socket interface takes it.
pub fn addr(host: &str, port: u16) -> SocketAddress {
    SocketAddress {
        host: host.to_string(),
        port,
    }
}

/// A call of the socket method `call`, driven on the instance's runtime.
macro_rules! driven_call {
    ($self:ident, $call:ident, $($arg:expr),*) => {{
        let f = $self.bindings.scheduler_core_libs_socket().socket();
        $self
            .rt
            .block_on(f.$call(&mut $self.store, $($arg),*))
            .expect("call")
    }};
}

socket_methods! { DrivenSocket, driven_call;
    connect => call_connect(remote: &SocketAddress) -> R<()>;
    send => call_send(data: &[u8]) -> R<u64>;
    receive => call_receive(max: u32) -> R<Vec<u8>>;
    close => call_close() -> R<()>;
    bind => call_bind(local: &SocketAddress) -> R<()>;
    listen => call_listen(backlog: u32) -> R<()>;
    accept => call_accept() -> R<ResourceAny>;
    try_receive => call_try_receive(max: u32) -> R<Vec<u8>>;
    shutdown => call_shutdown(how: ShutdownType) -> R<()>;
    local_address => call_get_local_address() -> R<SocketAddress>;
    peer_address => call_get_peer_address() -> R<SocketAddress>;
    set_keep_alive => call_set_keep_alive(on: bool, idle_ms: Option<u64>) -> R<()>;
    set_receive_buffer_size => call_set_receive_buffer_size(n: u64) -> R<()>;
    set_send_buffer_size => call_set_send_buffer_size(n: u64) -> R<()>;
    set_hop_limit => call_set_hop_limit(n: u8) -> R<()>;
    set_read_timeout => call_set_read_timeout(ms: u64) -> R<()>;
}

impl DrivenSocket {
    pub fn new() -> Self {
        Self::on(sockets_for_run())
    }

    /// An instance on `sockets`' TCP.
    pub fn on(sockets: SocketsImpl) -> Self {
        let rt = runtime();
        let mut store = Store::new(engine(), Ctx::new(loopback_policy()));
        let bindings = rt
            .block_on(socket_bindings::SocketComponent::instantiate_async(
                &mut store,
                socket_component(),
                linker(sockets, false),
            ))
            .expect("instantiate socket component");
        DrivenSocket {
            rt,
            store,
            bindings,
        }
    }

    /// A new IPv4 TCP socket.
    pub fn tcp4(&mut self) -> ResourceAny {
        let f = self.bindings.scheduler_core_libs_socket();
        self.rt
            .block_on(f.call_create_socket(&mut self.store, AddressFamily::Ipv4, Protocol::Tcp))
            .expect("call")
            .expect("create tcp4")
    }

    pub fn drop_socket(&mut self, s: ResourceAny) {
        self.rt
            .block_on(s.resource_drop_async(&mut self.store))
            .expect("drop");
    }
}

impl Default for DrivenSocket {
    fn default() -> Self {
        Self::new()
    }
}
