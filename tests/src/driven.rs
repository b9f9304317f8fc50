//! The artifact and the socket component driven as the scheduler drives them: async calls on a
//! current-thread tokio runtime, in the calling thread. The sync embedding (`Executor`,
//! `SocketGuest`) blocks on wasmtime-wasi's own multi-threaded runtime at every wait, so each
//! wait is a wake-up across threads: right for tests, not what a run costs. The benchmarks
//! measure through these.

use std::sync::OnceLock;

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
    AddressFamily, Protocol, SocketAddress, SocketError,
};

/// WASI as the scheduler links it (async, output streams' drops bounded) and the host's
/// wasi:tls; made once.
fn linker() -> &'static Linker<Ctx> {
    static L: OnceLock<Linker<Ctx>> = OnceLock::new();
    L.get_or_init(|| {
        let mut linker = Linker::new(engine());
        wasmtime_wasi::p2::add_to_linker_async(&mut linker).expect("wasi linker");
        compose::bound_stream_drops(&mut linker).expect("stream drops");
        compose::tls::add_to_linker(&mut linker).expect("wasi:tls linker");
        linker
    })
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
        let rt = runtime();
        let ctx = Ctx::with_tls(wasi_ctx(loopback_policy()), tls_ctx(settings).0);
        let mut store = Store::new(engine(), ctx);
        let bindings = rt
            .block_on(executor_bindings::SchedulerExecutor::instantiate_async(
                &mut store,
                executor_component(),
                linker(),
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

impl DrivenSocket {
    pub fn new() -> Self {
        let rt = runtime();
        let mut store = Store::new(engine(), Ctx::new(loopback_policy()));
        let bindings = rt
            .block_on(socket_bindings::SocketComponent::instantiate_async(
                &mut store,
                socket_component(),
                linker(),
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

    pub fn connect(&mut self, s: ResourceAny, remote: &SocketAddress) -> R<()> {
        let f = self.bindings.scheduler_core_libs_socket().socket();
        self.rt
            .block_on(f.call_connect(&mut self.store, s, remote))
            .expect("call")
    }

    pub fn send(&mut self, s: ResourceAny, data: &[u8]) -> R<u64> {
        let f = self.bindings.scheduler_core_libs_socket().socket();
        self.rt
            .block_on(f.call_send(&mut self.store, s, data))
            .expect("call")
    }

    pub fn receive(&mut self, s: ResourceAny, max: u32) -> R<Vec<u8>> {
        let f = self.bindings.scheduler_core_libs_socket().socket();
        self.rt
            .block_on(f.call_receive(&mut self.store, s, max))
            .expect("call")
    }

    pub fn close(&mut self, s: ResourceAny) -> R<()> {
        let f = self.bindings.scheduler_core_libs_socket().socket();
        self.rt
            .block_on(f.call_close(&mut self.store, s))
            .expect("call")
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
