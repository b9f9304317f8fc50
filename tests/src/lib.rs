//! Shared harness for the integration tests: load the real components into wasmtime with a
//! socket policy, and call their exports.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};

use compose::tls::{InstanceTls, Negotiated, TlsClient, TlsHostView, TlsSettings, TlsView};

use wasmtime::component::{Component, Linker, ResourceAny};
use wasmtime::{Config, Engine, Store};
use wasmtime_wasi::sockets::SocketAddrUse;
use wasmtime_wasi::{ResourceTable, WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

/// One host-side wrapper per exported socket method on `$guest` (`guest.connect(s, &addr)` and
/// so on), each making its call with `$invoke!`: the sync embedding (`SocketGuest`) and the
/// driven one (`driven::DrivenSocket`) share the table's shape.
macro_rules! socket_methods {
    ($guest:ident, $invoke:ident; $($name:ident => $call:ident ( $($arg:ident : $ty:ty),* ) -> $ret:ty;)*) => {
        impl $guest {
            $(pub fn $name(&mut self, s: ResourceAny $(, $arg: $ty)*) -> $ret {
                $invoke!(self, $call, s $(, $arg)*)
            })*
        }
    };
}

pub mod socket_bindings {
    wasmtime::component::bindgen!({ path: "../wit", world: "socket-component" });
}

pub mod driven;
pub mod etcd;
pub mod gunicorn;
pub mod http_server;
pub mod machine;
pub mod nginx;
pub mod proxy_py;
pub mod scratch;
pub mod ws_servers;

pub mod executor_bindings {
    wasmtime::component::bindgen!({
        path: ["../wit", "../wit/executor"],
        world: "scheduler:executor/scheduler-executor",
        with: { "wasi:io": wasmtime_wasi::p2::bindings::sync::io },
    });
}

pub use executor_bindings::exports::scheduler::executor::executor::{
    ActionError, ExportSource, ExportSpec, HttpMethod, Outcome, TimeoutPhase,
};

pub mod pool_bindings {
    wasmtime::component::bindgen!({ path: "../wit", world: "ip-pool-component" });
}

use socket_bindings::SocketComponent;
pub use socket_bindings::exports::scheduler::core_libs::socket::{
    AddressFamily, Exchange, Protocol, ShutdownType, SocketAddress, SocketError, SocketState,
    StateError, TlsError, TlsReason as SocketTlsReason,
};

pub struct Ctx {
    wasi: WasiCtx,
    tls: InstanceTls,
    pub table: ResourceTable,
    /// The policy the host's own TCP checks (`compose::sockets`; wasmtime-wasi's has it in
    /// `wasi`): loopback unless made with another.
    policy: Policy,
    /// The own TCP's streams (read and written straight in the guest's memory).
    streams: compose::sockets::OwnStreams,
    /// The largest size a linear memory asked to grow to, once `Executor::watch_memory` is on.
    pub memory_high: MemoryHigh,
}

/// A limiter that keeps the largest memory size asked for, and refuses a memory more than
/// `cap` bytes when one is set (`memory.grow` then fails in the guest, as at the memory's end).
#[derive(Default)]
pub struct MemoryHigh(pub usize, pub Option<usize>);

impl wasmtime::ResourceLimiter for MemoryHigh {
    fn memory_growing(
        &mut self,
        _: usize,
        desired: usize,
        _: Option<usize>,
    ) -> wasmtime::Result<bool> {
        self.0 = self.0.max(desired);
        Ok(self.1.is_none_or(|cap| desired <= cap))
    }

    fn table_growing(&mut self, _: usize, _: usize, _: Option<usize>) -> wasmtime::Result<bool> {
        Ok(true)
    }
}

/// The `wasi:tls` context of an instance with `settings` (platform and web roots alone by
/// default), and the slot its handshakes are recorded in.
pub fn tls_ctx(settings: &TlsSettings) -> (InstanceTls, Arc<Mutex<Option<Negotiated>>>) {
    TlsClient::new(settings).expect("TLS settings").context()
}

impl Ctx {
    pub fn new(policy: Policy) -> Self {
        Ctx {
            policy: policy.clone(),
            ..Self::with_wasi(wasi_ctx(policy))
        }
    }

    pub fn with_wasi(wasi: WasiCtx) -> Self {
        Self::with_tls(wasi, tls_ctx(&TlsSettings::default()).0)
    }

    pub fn with_tls(wasi: WasiCtx, tls: InstanceTls) -> Self {
        Ctx {
            wasi,
            tls,
            table: ResourceTable::new(),
            streams: Default::default(),
            policy: loopback_policy(),
            memory_high: MemoryHigh::default(),
        }
    }
}

impl compose::sockets::SocketsHostView for Ctx {
    fn sockets_view(&mut self) -> compose::sockets::SocketsView<'_> {
        compose::sockets::SocketsView {
            table: &mut self.table,
            check: &self.policy,
            streams: &mut self.streams,
        }
    }
}

impl TlsHostView for Ctx {
    fn tls_view(&mut self) -> TlsView<'_> {
        TlsView {
            table: &mut self.table,
            tls: &self.tls,
        }
    }
}

impl WasiView for Ctx {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// The WASI linker, set up once per test process.
pub fn linker() -> &'static Linker<Ctx> {
    static L: OnceLock<Linker<Ctx>> = OnceLock::new();
    L.get_or_init(|| wasi_tls_linker(compose::tls::add_to_linker))
}

/// [`linker`] with wasmtime-wasi's `read` for TLS streams (a copy more a read), for
/// comparison.
pub fn copying_tls_linker() -> &'static Linker<Ctx> {
    static L: OnceLock<Linker<Ctx>> = OnceLock::new();
    L.get_or_init(|| wasi_tls_linker(compose::tls::add_to_linker_copying))
}

type AddTls = fn(&mut Linker<Ctx>) -> wasmtime::Result<()>;

/// WASI (its output streams' drops bounded) and `wasi:tls` added by `tls`.
fn wasi_tls_linker(tls: AddTls) -> Linker<Ctx> {
    let mut linker = Linker::new(engine());
    wasmtime_wasi::p2::add_to_linker_sync(&mut linker).expect("wasi linker");
    compose::bound_stream_drops_sync(&mut linker).expect("bounded stream drops");
    tls(&mut linker).expect("wasi:tls linker");
    linker
}

/// A lookup in the test name service: names under `.invalid` (RFC 6761) do not exist; any
/// other name is never answered, as by a name server that drops the query.
pub struct TestLookup {
    nxdomain: bool,
}

#[wasmtime_wasi::async_trait]
impl wasmtime_wasi::p2::Pollable for TestLookup {
    async fn ready(&mut self) {
        if !self.nxdomain {
            std::future::pending::<()>().await
        }
    }
}

/// The WASI linker with `wasi:sockets/ip-name-lookup` answered by the test name service
/// ([`TestLookup`]) instead of the system resolver: no query leaves the process, and a lookup
/// that never completes can be made on purpose. IP literals never reach it; sockets and
/// everything else are WASI's.
pub fn test_dns_linker() -> &'static Linker<Ctx> {
    use wasmtime::component::{Resource, ResourceType};
    use wasmtime_wasi::p2::DynPollable;
    use wasmtime_wasi::p2::bindings::sockets::network::{ErrorCode, IpAddress, Network};

    static L: OnceLock<Linker<Ctx>> = OnceLock::new();
    L.get_or_init(|| {
        let mut linker = wasi_tls_linker(compose::tls::add_to_linker);
        linker.allow_shadowing(true);
        let mut lookup = linker
            .instance("wasi:sockets/ip-name-lookup@0.2.12")
            .expect("ip-name-lookup instance");
        lookup
            .resource(
                "resolve-address-stream",
                ResourceType::host::<TestLookup>(),
                |mut store, rep| {
                    store
                        .data_mut()
                        .table
                        .delete(Resource::<TestLookup>::new_own(rep))?;
                    Ok(())
                },
            )
            .expect("resource");
        lookup
            .func_wrap(
                "resolve-addresses",
                |mut store, (_network, name): (Resource<Network>, String)| {
                    let nxdomain = name.trim_end_matches('.').ends_with(".invalid");
                    let stream = store.data_mut().table.push(TestLookup { nxdomain })?;
                    Ok((Ok::<_, ErrorCode>(stream),))
                },
            )
            .expect("resolve-addresses");
        lookup
            .func_wrap(
                "[method]resolve-address-stream.resolve-next-address",
                |store, (stream,): (Resource<TestLookup>,)| {
                    let code = match store.data().table.get(&stream)?.nxdomain {
                        true => ErrorCode::NameUnresolvable,
                        false => ErrorCode::WouldBlock,
                    };
                    Ok((Err::<Option<IpAddress>, _>(code),))
                },
            )
            .expect("resolve-next-address");
        lookup
            .func_wrap(
                "[method]resolve-address-stream.subscribe",
                |mut store, (stream,): (Resource<TestLookup>,)| {
                    let p: Resource<DynPollable> =
                        wasmtime_wasi::p2::subscribe(&mut store.data_mut().table, stream)?;
                    Ok((p,))
                },
            )
            .expect("subscribe");
        linker
    })
}

/// Compile a component once per test process (its code kept on disk, as the scheduler's).
fn load(cell: &'static OnceLock<Component>, path: &str) -> &'static Component {
    cell.get_or_init(|| {
        let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("reading {path}: {e}"));
        compose::cache::component(engine(), &bytes)
            .unwrap_or_else(|e| panic!("loading {path}: {e:?}"))
    })
}

pub fn engine() -> &'static Engine {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    ENGINE.get_or_init(|| {
        let mut c = Config::new();
        if std::env::var_os("PERFMAP").is_some() {
            c.profiler(wasmtime::ProfilingStrategy::PerfMap);
        }
        Engine::new(&c).expect("engine")
    })
}

fn socket_component() -> &'static Component {
    static C: OnceLock<Component> = OnceLock::new();
    load(&C, compose::SOCKET_COMPONENT)
}

fn pool_component() -> &'static Component {
    static C: OnceLock<Component> = OnceLock::new();
    load(&C, compose::IP_POOL_COMPONENT)
}

/// One instance of the ip-pool component; `pool()` gives its exported functions.
pub struct PoolGuest {
    pub store: Store<Ctx>,
    bindings: pool_bindings::IpPoolComponent,
}

impl PoolGuest {
    pub fn new() -> Self {
        let ctx = Ctx::with_wasi(WasiCtxBuilder::new().build());
        let mut store = Store::new(engine(), ctx);
        let bindings =
            pool_bindings::IpPoolComponent::instantiate(&mut store, pool_component(), linker())
                .expect("instantiate");
        PoolGuest { store, bindings }
    }

    pub fn pool(&self) -> &pool_bindings::exports::scheduler::core_libs::ip_pool::Guest {
        self.bindings.scheduler_core_libs_ip_pool()
    }
}

impl Default for PoolGuest {
    fn default() -> Self {
        Self::new()
    }
}

/// Which addresses a guest may use: a `socket_addr_check` in wasmtime.
pub type Policy = Arc<dyn Fn(SocketAddr, SocketAddrUse) -> bool + Send + Sync>;

/// Loopback (and the wildcard, for implicit binds) only.
pub fn loopback_policy() -> Policy {
    Arc::new(|addr, _| addr.ip().is_loopback() || addr.ip().is_unspecified())
}

pub fn wasi_ctx(policy: Policy) -> WasiCtx {
    let mut b = WasiCtxBuilder::new();
    b.allow_tcp(true).allow_udp(true).allow_ip_name_lookup(true);
    b.socket_addr_check(move |addr, usage| {
        let ok = policy(addr, usage);
        Box::pin(async move { ok })
    });
    b.build()
}

/// One instance of the socket component, driven from the host through its exports.
pub struct SocketGuest {
    pub store: Store<Ctx>,
    bindings: SocketComponent,
}

pub type R<T> = Result<T, SocketError>;

pub fn addr(host: &str, port: u16) -> SocketAddress {
    SocketAddress {
        host: host.to_string(),
        port,
    }
}

impl SocketGuest {
    pub fn new() -> Self {
        Self::with_policy(loopback_policy())
    }

    pub fn with_policy(policy: Policy) -> Self {
        Self::with_linker(policy, linker())
    }

    /// A guest whose host names go to the test name service ([`test_dns_linker`]).
    pub fn with_test_dns() -> Self {
        Self::with_linker(loopback_policy(), test_dns_linker())
    }

    /// A guest whose TLS is configured with `settings`; the slot holds what its last
    /// handshake negotiated.
    pub fn with_tls(settings: &TlsSettings) -> (Self, Arc<Mutex<Option<Negotiated>>>) {
        Self::with_tls_on(settings, linker())
    }

    /// The same on `linker` (e.g. [`copying_tls_linker`]).
    pub fn with_tls_on(
        settings: &TlsSettings,
        linker: &Linker<Ctx>,
    ) -> (Self, Arc<Mutex<Option<Negotiated>>>) {
        let (tls, last) = tls_ctx(settings);
        let ctx = Ctx::with_tls(wasi_ctx(loopback_policy()), tls);
        (Self::with_ctx(ctx, linker), last)
    }

    fn with_linker(policy: Policy, linker: &Linker<Ctx>) -> Self {
        Self::with_ctx(Ctx::new(policy), linker)
    }

    fn with_ctx(ctx: Ctx, linker: &Linker<Ctx>) -> Self {
        let mut store = Store::new(engine(), ctx);
        let bindings = SocketComponent::instantiate(&mut store, socket_component(), linker)
            .expect("instantiate");
        SocketGuest { store, bindings }
    }

    /// Entries in the host's resource table (sockets, streams, pollables, ...).
    pub fn table_len(&mut self) -> usize {
        self.store.data_mut().table.iter_mut().count()
    }

    pub fn create(&mut self, family: AddressFamily, protocol: Protocol) -> R<ResourceAny> {
        self.bindings
            .scheduler_core_libs_socket()
            .call_create_socket(&mut self.store, family, protocol)
            .expect("call")
    }

    pub fn tcp4(&mut self) -> ResourceAny {
        self.create(AddressFamily::Ipv4, Protocol::Tcp)
            .expect("create tcp4")
    }

    pub fn udp4(&mut self) -> ResourceAny {
        self.create(AddressFamily::Ipv4, Protocol::Udp)
            .expect("create udp4")
    }

    pub fn resolve(&mut self, host: &str, timeout_ms: u64) -> R<Vec<String>> {
        self.bindings
            .scheduler_core_libs_socket()
            .call_resolve(&mut self.store, host, timeout_ms)
            .expect("call")
    }

    pub fn drop_socket(&mut self, s: ResourceAny) {
        s.resource_drop(&mut self.store).expect("drop");
    }
}

impl SocketGuest {
    /// `send-receive` when the whole of `data` is sent: the answer.
    pub fn send_receive(
        &mut self,
        s: ResourceAny,
        data: &[u8],
        max: u32,
        idle: bool,
    ) -> R<Vec<u8>> {
        self.exchange(s, data, max, idle).map(|e| {
            assert_eq!(e.unsent, 0, "an answer came before the data was all sent");
            e.answer
        })
    }
}

/// A call of the socket method `call` in the sync embedding.
macro_rules! sync_call {
    ($self:ident, $call:ident, $($arg:expr),*) => {
        $self.bindings.scheduler_core_libs_socket().socket().$call(&mut $self.store, $($arg),*).expect("call")
    };
}

socket_methods! { SocketGuest, sync_call;
    family => call_family() -> AddressFamily;
    protocol => call_protocol() -> Protocol;
    state => call_state() -> SocketState;
    bind => call_bind(local: &SocketAddress) -> R<()>;
    connect => call_connect(remote: &SocketAddress) -> R<()>;
    listen => call_listen(backlog: u32) -> R<()>;
    accept => call_accept() -> R<ResourceAny>;
    send => call_send(data: &[u8]) -> R<u64>;
    receive => call_receive(max: u32) -> R<Vec<u8>>;
    try_receive => call_try_receive(max: u32) -> R<Vec<u8>>;
    discard => call_discard(max: u32) -> R<u32>;
    exchange => call_send_receive(data: &[u8], max: u32, idle_check: bool) -> R<Exchange>;
    send_to => call_send_to(data: &[u8], remote: &SocketAddress) -> R<u64>;
    receive_from => call_receive_from(max: u32) -> R<(Vec<u8>, SocketAddress)>;
    shutdown => call_shutdown(how: ShutdownType) -> R<()>;
    close => call_close() -> R<()>;
    start_tls => call_start_tls(server_name: &str) -> R<()>;
    is_tls => call_is_tls() -> bool;
    set_read_timeout => call_set_read_timeout(ms: u64) -> R<()>;
    set_write_timeout => call_set_write_timeout(ms: u64) -> R<()>;
    set_connect_timeout => call_set_connect_timeout(ms: u64) -> R<()>;
    set_reuse_address => call_set_reuse_address(on: bool) -> R<()>;
    set_keep_alive => call_set_keep_alive(on: bool, idle_ms: Option<u64>) -> R<()>;
    set_receive_buffer_size => call_set_receive_buffer_size(n: u64) -> R<()>;
    set_send_buffer_size => call_set_send_buffer_size(n: u64) -> R<()>;
    set_hop_limit => call_set_hop_limit(n: u8) -> R<()>;
    local_address => call_get_local_address() -> R<SocketAddress>;
    peer_address => call_get_peer_address() -> R<SocketAddress>;
}

impl Default for SocketGuest {
    fn default() -> Self {
        Self::new()
    }
}

/// A peer on `bind` (a loopback address, port 0) that accepts one connection and hands it to
/// `serve` on a thread of its own: the port, and the thread whose result is `serve`'s.
pub fn one_connection_peer<T: Send + 'static>(
    bind: &str,
    serve: impl FnOnce(std::net::TcpStream, SocketAddr) -> T + Send + 'static,
) -> (u16, std::thread::JoinHandle<T>) {
    let listener = std::net::TcpListener::bind(bind).unwrap();
    let port = listener.local_addr().unwrap().port();
    let thread = std::thread::spawn(move || {
        let (c, peer) = listener.accept().unwrap();
        serve(c, peer)
    });
    (port, thread)
}

/// Open file descriptors of this process.
pub fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .map(|d| d.count())
        .unwrap_or(0)
}

fn executor_component() -> &'static Component {
    static C: OnceLock<Component> = OnceLock::new();
    load(&C, compose::EXECUTOR_ARTIFACT)
}

/// One instance of the composed `scheduler-executor.wasm`, loaded as a scheduler loads it.
pub struct Executor {
    pub store: Store<Ctx>,
    bindings: executor_bindings::SchedulerExecutor,
}

impl Executor {
    pub fn new() -> Self {
        Self::with_policy(loopback_policy())
    }

    pub fn with_policy(policy: Policy) -> Self {
        Self::with_linker(policy, linker())
    }

    /// An executor whose host names go to the test name service ([`test_dns_linker`]).
    pub fn with_test_dns() -> Self {
        Self::with_linker(loopback_policy(), test_dns_linker())
    }

    /// An executor whose TLS is configured with `settings`; the slot holds what its last
    /// handshake negotiated.
    pub fn with_tls(settings: &TlsSettings) -> (Self, Arc<Mutex<Option<Negotiated>>>) {
        Self::with_tls_on(settings, linker())
    }

    /// The same on `linker` (e.g. [`copying_tls_linker`]).
    pub fn with_tls_on(
        settings: &TlsSettings,
        linker: &Linker<Ctx>,
    ) -> (Self, Arc<Mutex<Option<Negotiated>>>) {
        let (tls, last) = tls_ctx(settings);
        let ctx = Ctx::with_tls(wasi_ctx(loopback_policy()), tls);
        (Self::with_ctx(ctx, linker), last)
    }

    fn with_linker(policy: Policy, linker: &Linker<Ctx>) -> Self {
        Self::with_ctx(Ctx::new(policy), linker)
    }

    fn with_ctx(ctx: Ctx, linker: &Linker<Ctx>) -> Self {
        let mut store = Store::new(engine(), ctx);
        let bindings = executor_bindings::SchedulerExecutor::instantiate(
            &mut store,
            executor_component(),
            linker,
        )
        .expect("instantiate executor");
        Executor { store, bindings }
    }

    /// Run one action; `params` is the with-params object.
    pub fn run(
        &mut self,
        call: HttpMethod,
        params: serde_json::Value,
        exports: Vec<ExportSpec>,
    ) -> Result<Outcome, ActionError> {
        let action = executor_bindings::exports::scheduler::executor::executor::Action {
            id: "test-action".into(),
            call,
            with_params: params.to_string(),
            exports,
        };
        self.bindings
            .scheduler_executor_executor()
            .call_execute_action(&mut self.store, &action)
            .expect("call")
    }

    /// From now on, `store.data().memory_high` holds the largest size a memory grew to.
    pub fn watch_memory(&mut self) {
        self.store.limiter(|c| &mut c.memory_high);
    }

    pub fn get(&mut self, url: &str) -> Result<Outcome, ActionError> {
        self.run(HttpMethod::Get, serde_json::json!({ "url": url }), vec![])
    }

    pub fn pool(&self) -> &executor_bindings::exports::scheduler::core_libs::ip_pool::Guest {
        self.bindings.scheduler_core_libs_ip_pool()
    }

    /// A round-robin pool `name` over `cidr` in the artifact's own ip-pool.
    pub fn create_pool(&mut self, name: &str, cidr: &str) {
        use executor_bindings::exports::scheduler::core_libs::ip_pool as pool;
        let f = self.pool().clone();
        let cfg = pool::PoolConfig {
            strategy: pool::Strategy::RoundRobin,
            lease_ttl_ms: None,
            seed: 1,
        };
        f.call_create_pool(&mut self.store, name, cfg)
            .unwrap()
            .unwrap();
        f.call_add_cidr(&mut self.store, name, cidr, true)
            .unwrap()
            .unwrap();
    }

    /// An address from pool `name` for the resource `resource` of tenant `t`.
    pub fn allocate(
        &mut self,
        name: &str,
        resource: &str,
    ) -> executor_bindings::exports::scheduler::core_libs::ip_pool::Binding {
        use executor_bindings::exports::scheduler::core_libs::ip_pool as pool;
        let owner = pool::Owner {
            tenant: "t".into(),
            resource: resource.into(),
            resource_type: pool::ResourceType::Vm,
        };
        let f = self.pool().clone();
        f.call_allocate(&mut self.store, name, &owner)
            .unwrap()
            .unwrap()
    }
}

impl Default for Executor {
    fn default() -> Self {
        Self::new()
    }
}
