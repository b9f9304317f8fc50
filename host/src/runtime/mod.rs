//! The wasmtime side: the artifact compiled once, pre-instantiated, instances from the pooling
//! allocator (one per user), and a socket policy per instance.

pub mod body;
mod errors;
#[cfg(debug_assertions)]
mod fault;
pub mod lookup;
pub mod server;
mod udp;
pub use udp::{UdpExchange, UdpFailure, UdpOutcome};
pub mod websocket;
pub use errors::{error_kind, error_text, pool_error_text};

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};

use wasmtime::component::Linker;
use wasmtime::{Config, Engine, Store};
use wasmtime_wasi::sockets::SocketAddrUse;
use wasmtime_wasi::{ResourceTable, WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

use compose::tls::{
    InstanceTls, Negotiated, TlsClient, TlsCounts, TlsHostView, TlsSettings, TlsView,
};

pub mod bindings {
    wasmtime::component::bindgen!({
        path: ["../wit", "../wit/executor"],
        world: "scheduler:executor/scheduler-executor",
        imports: { default: async },
        exports: { default: async },
        with: { "wasi:io": wasmtime_wasi::p2::bindings::io },
    });
}

/// The socket interface the artifact exports beside the executor, for UDP actions.
pub mod socket_bindings {
    wasmtime::component::bindgen!({
        path: ["../wit", "../wit/executor"],
        world: "scheduler:executor/scheduler-executor-sockets",
        imports: { default: async },
        exports: { default: async },
        with: { "wasi:io": wasmtime_wasi::p2::bindings::io },
    });
}

pub use bindings::exports::scheduler::core_libs::ip_pool as pool;
pub use bindings::exports::scheduler::executor::executor as exec;
pub use socket_bindings::exports::scheduler::core_libs::socket as sock;

pub struct UserCtx {
    wasi: WasiCtx,
    tls: InstanceTls,
    table: ResourceTable,
    /// The own TCP's streams (read and written straight in the guest's memory).
    streams: compose::sockets::OwnStreams,
    /// What the instance may reach (the socket check has it too).
    policy: Arc<Policy>,
    #[cfg(debug_assertions)]
    fault: fault::TrapPast,
}

impl UserCtx {
    /// The sockets view and the policy at once (the policed resolver needs both).
    pub fn sockets_and_policy(
        &mut self,
    ) -> (wasmtime_wasi::sockets::WasiSocketsCtxView<'_>, &Policy) {
        let view = wasmtime_wasi::sockets::WasiSocketsCtxView {
            ctx: self.wasi.sockets(),
            table: &mut self.table,
        };
        (view, &self.policy)
    }
}

impl TlsHostView for UserCtx {
    fn tls_view(&mut self) -> TlsView<'_> {
        TlsView {
            table: &mut self.table,
            tls: &self.tls,
        }
    }
}

impl compose::sockets::SocketsHostView for UserCtx {
    fn sockets_view(&mut self) -> compose::sockets::SocketsView<'_> {
        compose::sockets::SocketsView {
            table: &mut self.table,
            check: &*self.policy,
            streams: &mut self.streams,
        }
    }
}

impl WasiView for UserCtx {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// What one instance may reach: connect targets (ip, port) and bind addresses. Shared with the
/// socket check, so the host can add targets as it renders actions.
#[derive(Default)]
pub struct Policy {
    targets: Mutex<HashSet<SocketAddr>>,
    /// Addresses reachable on any port (`exec -L`: a redirect to another port or scheme of
    /// the same host).
    hosts: Mutex<HashSet<IpAddr>>,
    /// Host names that may be looked up: those of the actions' URLs as rendered (normalised).
    names: Mutex<HashSet<String>>,
    binds: Mutex<Binds>,
    /// Addresses allowed one by one (`exec --bind-ip`), while no pool binding is in force.
    allowed: Mutex<HashSet<IpAddr>>,
    /// A server's: it may listen (on its pinned address) and accept.
    listens: bool,
    /// The last URL of an action read for this instance, and its host: what it allows (an
    /// address at a port, or a name at a port) was allowed when it was read, and nothing
    /// allowed is taken back.
    last_url: Mutex<Option<(String, String)>>,
    /// The ports the actions' URLs name with each host name (normalised): the addresses the
    /// instance's lookups of that name find are allowed at those ports.
    name_ports: Mutex<HashMap<String, Vec<u16>>>,
    /// The names of the instance's lookups under way, by their streams' handles.
    lookups: Mutex<HashMap<u32, String>>,
}

/// Which local addresses an instance may bind.
#[derive(Default)]
enum Binds {
    /// No pool binding: the wildcard and the addresses allowed one by one.
    #[default]
    Free,
    /// The user's address from a pool is in force: that one only (no wildcard, nothing the
    /// user held before and released).
    Pinned(IpAddr),
    /// The user takes its addresses from a pool and holds none right now: nothing.
    Withdrawn,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Policy {
    pub fn allow_target(&self, addr: SocketAddr) {
        lock(&self.targets).insert(addr);
    }

    /// The host of `url` if it is the last URL remembered by [`Policy::remember_url`].
    pub fn last_url(&self, url: &str) -> Option<String> {
        let last = lock(&self.last_url);
        last.as_ref()
            .filter(|(u, _)| u == url)
            .map(|(_, host)| host.clone())
    }

    /// `url`, whose host is `host`, has been allowed.
    pub fn remember_url(&self, url: &str, host: &str) {
        *lock(&self.last_url) = Some((url.to_string(), host.to_string()));
    }

    /// Allow host name `name` to be looked up, and what its lookups find at `port`.
    pub fn allow_name_at(&self, name: &str, port: u16) {
        self.allow_name(name);
        let mut ports = lock(&self.name_ports);
        let at = ports
            .entry(crate::runtime::lookup::normalize(name))
            .or_default();
        if !at.contains(&port) {
            at.push(port);
        }
    }

    /// The instance's lookup `id` of `name` has begun.
    pub fn looking_up(&self, id: u32, name: &str) {
        lock(&self.lookups).insert(id, crate::runtime::lookup::normalize(name));
    }

    /// The instance's lookup `id` found `ip`: allowed at the ports its name was given.
    pub fn found(&self, id: u32, ip: IpAddr) {
        let Some(name) = lock(&self.lookups).get(&id).cloned() else {
            return;
        };
        // An IPv4-mapped address is allowed as found and as the IPv4 address the client
        // connects to over IPv4.
        let v4 = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4),
            IpAddr::V4(_) => None,
        };
        let ports = lock(&self.name_ports)
            .get(&name)
            .cloned()
            .unwrap_or_default();
        let mut targets = lock(&self.targets);
        for port in ports {
            targets.insert(SocketAddr::new(ip, port));
            targets.extend(v4.map(|v4| SocketAddr::new(v4, port)));
        }
    }

    /// The instance's lookup `id` is over.
    pub fn lookup_done(&self, id: u32) {
        lock(&self.lookups).remove(&id);
    }

    /// Allow every port of `ip` (`exec -L`).
    pub fn allow_host(&self, ip: IpAddr) {
        lock(&self.hosts).insert(ip);
    }

    /// Allow a host name to be looked up (an action's URL names it).
    pub fn allow_name(&self, name: &str) {
        lock(&self.names).insert(crate::runtime::lookup::normalize(name));
    }

    /// Whether `name` may be looked up: an IP literal, or a name allowed.
    pub fn may_resolve(&self, name: &str) -> bool {
        crate::runtime::lookup::is_literal(name)
            || lock(&self.names).contains(&crate::runtime::lookup::normalize(name))
    }

    /// Allow one more local address (no pool binding in force).
    pub fn allow_bind(&self, ip: IpAddr) {
        lock(&self.allowed).insert(ip);
    }

    /// The user's pool binding: `Some(ip)` the only address it may bind from now on, `None`
    /// none at all (released, not yet given another).
    pub fn pin(&self, ip: Option<IpAddr>) {
        *lock(&self.binds) = match ip {
            Some(ip) => Binds::Pinned(ip),
            None => Binds::Withdrawn,
        };
    }

    /// A server's policy: it binds and listens on `ip` only, and connects nowhere.
    pub fn server(ip: IpAddr) -> Policy {
        Policy {
            binds: Mutex::new(Binds::Pinned(ip)),
            listens: true,
            ..Policy::default()
        }
    }

    /// Whether `addr` may be used so.
    fn check(&self, addr: SocketAddr, usage: SocketAddrUse) -> bool {
        match usage {
            SocketAddrUse::TcpBind | SocketAddrUse::UdpBind => match &*lock(&self.binds) {
                Binds::Free => {
                    addr.ip().is_unspecified() || lock(&self.allowed).contains(&addr.ip())
                }
                Binds::Pinned(ip) => addr.ip() == *ip,
                Binds::Withdrawn => false,
            },
            SocketAddrUse::TcpConnect | SocketAddrUse::UdpSend | SocketAddrUse::UdpReceive => {
                lock(&self.targets).contains(&addr) || lock(&self.hosts).contains(&addr.ip())
            }
            // Actions are clients: no listening sockets; a server listens on its address.
            SocketAddrUse::TcpListen => {
                self.listens && matches!(&*lock(&self.binds), Binds::Pinned(ip) if *ip == addr.ip())
            }
            SocketAddrUse::TcpAccept => self.listens,
        }
    }
}

impl compose::sockets::AddrCheck for Policy {
    fn allows(&self, addr: SocketAddr, usage: SocketAddrUse) -> bool {
        self.check(addr, usage)
    }
}

/// WASI (its output streams' drops bounded; TCP the host's own unless `SCHEDULER_SOCKETS`
/// says `wasmtime`), the host's `wasi:tls` and the policed name lookup: what every instance
/// links.
fn linker(engine: &Engine) -> Result<Linker<UserCtx>, String> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(fail("linking WASI"))?;
    if compose::sockets::SocketsImpl::for_run()? == compose::sockets::SocketsImpl::Own {
        compose::sockets::add_to_linker(&mut linker).map_err(fail("linking TCP"))?;
    }
    compose::bound_stream_drops(&mut linker).map_err(fail("linking WASI streams"))?;
    compose::tls::add_to_linker(&mut linker).map_err(fail("linking wasi:tls"))?;
    crate::runtime::lookup::add_to_linker(&mut linker).map_err(fail("linking the name lookup"))?;
    Ok(linker)
}

/// An instance's store: sockets checked against `policy`, TLS from `tls`, and `dirs` (host
/// path, name) preopened read-only.
fn store(
    engine: &Engine,
    policy: Arc<Policy>,
    tls: InstanceTls,
    dirs: &[(std::path::PathBuf, String)],
) -> Result<Store<UserCtx>, String> {
    let mut b = WasiCtxBuilder::new();
    for (host, name) in dirs {
        b.preopened_dir(host, name, wasmtime_wasi::FsPerms::ReadOnly)
            .map_err(|e| format!("{}: {e}", host.display()))?;
    }
    b.allow_tcp(true).allow_udp(true).allow_ip_name_lookup(true);
    let check = policy.clone();
    b.socket_addr_check(move |addr, usage| {
        let ok = check.check(addr, usage);
        Box::pin(async move { ok })
    });
    #[allow(unused_mut)]
    let mut store = Store::new(
        engine,
        UserCtx {
            wasi: b.build(),
            tls,
            table: ResourceTable::new(),
            streams: Default::default(),
            policy,
            #[cfg(debug_assertions)]
            fault: fault::TrapPast::from_env(),
        },
    );
    #[cfg(debug_assertions)]
    if store.data().fault.is_on() {
        store.limiter(|c| &mut c.fault);
    }
    Ok(store)
}

pub struct Runtime {
    engine: Engine,
    pre: wasmtime::component::InstancePre<UserCtx>,
    /// Where the executor and ip-pool exports are in an instance (found once).
    indices: bindings::SchedulerExecutorIndices,
    /// Where the socket interface is in an instance; `None` for an artifact without it (a
    /// drop-in build that does not export it: no UDP actions).
    sockets: Option<socket_bindings::SchedulerExecutorSocketsIndices>,
    /// Where the WebSocket interface is; `None` for an artifact without it.
    websocket: Option<websocket::bindings::SchedulerExecutorWebsocketIndices>,
    tls: Tls,
}

/// The run's TLS clients: one for everyone, and one per tenant with a client identity of its own.
pub struct Tls {
    default: TlsClient,
    tenants: std::collections::HashMap<String, TlsClient>,
}

impl Tls {
    pub fn new(
        default: &TlsSettings,
        tenants: &[(String, TlsSettings)],
    ) -> Result<Tls, compose::tls::TlsSetupError> {
        let mut by_tenant = std::collections::HashMap::new();
        for (tenant, settings) in tenants {
            let client =
                TlsClient::new(settings).map_err(|e| e.within(&format!("tenant {tenant}")))?;
            by_tenant.insert(tenant.clone(), client);
        }
        Ok(Tls {
            default: TlsClient::new(default)?,
            tenants: by_tenant,
        })
    }

    fn client(&self, tenant: Option<&str>) -> &TlsClient {
        tenant
            .and_then(|t| self.tenants.get(t))
            .unwrap_or(&self.default)
    }

    /// Handshakes of the whole run, by what they negotiated.
    pub fn counts(&self) -> TlsCounts {
        let mut all = self.default.counts();
        for client in self.tenants.values() {
            let c = client.counts();
            for (k, n) in c.negotiated {
                *all.negotiated.entry(k).or_default() += n;
            }
            all.resumed += c.resumed;
            all.failed += c.failed;
        }
        all
    }

    /// Whether any client skips verifying certificates.
    pub fn insecure(&self) -> bool {
        self.default.insecure() || self.tenants.values().any(TlsClient::insecure)
    }
}

pub struct Instance {
    pub store: Store<UserCtx>,
    pub bindings: bindings::SchedulerExecutor,
    /// The instance's socket interface, when the artifact exports it.
    sockets: Option<socket_bindings::SchedulerExecutorSockets>,
    /// The instance's WebSocket sessions, when the artifact exports them.
    websocket: Option<websocket::bindings::SchedulerExecutorWebsocket>,
    /// What this instance's last TLS handshake negotiated.
    pub tls_last: Arc<Mutex<Option<Negotiated>>>,
}

/// A failed call into wasmtime as text. A trap is `what` and its cause, without the wasm
/// backtrace's code offsets: it is the kind errors are counted by in the report.
fn fail(what: &str) -> impl Fn(wasmtime::Error) -> String + '_ {
    move |e| match e.downcast_ref::<wasmtime::WasmBacktrace>() {
        Some(_) => format!("{what}: {}", e.root_cause()),
        None => format!("{what}: {e:?}"),
    }
}

/// `SCHEDULER_PERFMAP` set: compiled guest code is named in `/tmp/perf-<pid>.map`, for `perf`.
pub(crate) fn perfmap_if_asked(config: &mut Config) {
    if std::env::var_os("SCHEDULER_PERFMAP").is_some() {
        config.profiler(wasmtime::ProfilingStrategy::PerfMap);
    }
}

impl Runtime {
    /// `max_instances`: how many instances may be alive at once (pooling allocator slots).
    pub fn new(max_instances: u32, tls: Tls) -> Result<Runtime, String> {
        let slots = max_instances.max(2);
        let mut config = Config::new();
        // The arena, or the pool when asked for (`compose::memory`).
        let mode = compose::memory::MemoryMode::for_run()?;
        compose::memory::configure(&mut config, slots, mode)?;
        perfmap_if_asked(&mut config);
        let engine = Engine::new(&config).map_err(fail("engine"))?;
        // The artifact built into this binary, or another one (a drop-in build to compare).
        let component = match std::env::var_os("SCHEDULER_EXECUTOR") {
            Some(path) => {
                let what = format!(
                    "loading the artifact {}",
                    std::path::Path::new(&path).display()
                );
                let bytes = std::fs::read(&path).map_err(|e| format!("{what}: {e}"))?;
                compose::cache::component(&engine, &bytes).map_err(fail(&what))?
            }
            None => compose::cache::component(&engine, compose::EXECUTOR_BYTES)
                .map_err(fail("loading the built-in artifact"))?,
        };
        let linker = linker(&engine)?;
        let pre = linker
            .instantiate_pre(&component)
            .map_err(fail("pre-instantiating"))?;
        let sockets = socket_bindings::SchedulerExecutorSocketsIndices::new(&pre).ok();
        let websocket = websocket::bindings::SchedulerExecutorWebsocketIndices::new(&pre).ok();
        let indices =
            bindings::SchedulerExecutorIndices::new(&pre).map_err(fail("binding the artifact"))?;
        Ok(Runtime {
            engine,
            pre,
            indices,
            sockets,
            websocket,
            tls,
        })
    }

    pub fn tls(&self) -> &Tls {
        &self.tls
    }

    /// A user's instance; `tenant` picks its TLS client identity.
    pub async fn instantiate(
        &self,
        policy: Arc<Policy>,
        tenant: Option<&str>,
    ) -> Result<Instance, String> {
        let (tls, tls_last) = self.tls.client(tenant).context();
        let mut store = store(&self.engine, policy, tls, &[])?;
        let instance = self
            .pre
            .instantiate_async(&mut store)
            .await
            .map_err(fail("instantiating"))?;
        let bindings = self
            .indices
            .load(&mut store, &instance)
            .map_err(fail("binding the instance"))?;
        let sockets = match &self.sockets {
            Some(i) => Some(
                i.load(&mut store, &instance)
                    .map_err(fail("binding the socket interface"))?,
            ),
            None => None,
        };
        let websocket = match &self.websocket {
            Some(i) => Some(
                i.load(&mut store, &instance)
                    .map_err(fail("binding the WebSocket interface"))?,
            ),
            None => None,
        };
        Ok(Instance {
            store,
            bindings,
            sockets,
            websocket,
            tls_last,
        })
    }
}

impl Instance {
    pub async fn execute(
        &mut self,
        action: &exec::Action,
    ) -> Result<Result<exec::Outcome, exec::ActionError>, String> {
        self.bindings
            .scheduler_executor_executor()
            .call_execute_action(&mut self.store, action)
            .await
            .map_err(fail("execute-action trapped"))
    }

    /// `execute` with a body streamed from the host's files (`body`'s pieces read as they
    /// are sent).
    pub async fn execute_with_body(
        &mut self,
        action: &exec::Action,
        body: body::Opened,
    ) -> Result<Result<exec::Outcome, exec::ActionError>, String> {
        let len = body.length();
        let stream: wasmtime_wasi::p2::DynInputStream = Box::new(body);
        let stream = self
            .store
            .data_mut()
            .table
            .push(stream)
            .map_err(|e| format!("the body stream: {e}"))?;
        self.bindings
            .scheduler_executor_executor()
            .call_execute_action_with_body(&mut self.store, action, stream, len)
            .await
            .map_err(fail("execute-action-with-body trapped"))
    }

    /// Close the instance's idle keep-alive connections (its source address was released).
    pub async fn close_idle(&mut self) -> Result<(), String> {
        self.bindings
            .scheduler_executor_executor()
            .call_close_idle(&mut self.store)
            .await
            .map_err(fail("close-idle trapped"))
    }

    /// The cookies in the instance's jar.
    pub async fn cookies(&mut self) -> Result<Vec<exec::Cookie>, String> {
        self.bindings
            .scheduler_executor_executor()
            .call_cookies(&mut self.store)
            .await
            .map_err(fail("cookies trapped"))
    }

    /// Put cookies in the instance's jar.
    pub async fn add_cookies(&mut self, cookies: &[exec::Cookie]) -> Result<(), String> {
        self.bindings
            .scheduler_executor_executor()
            .call_add_cookies(&mut self.store, cookies)
            .await
            .map_err(fail("add-cookies trapped"))
    }

    pub fn pool(&self) -> pool::Guest {
        self.bindings.scheduler_core_libs_ip_pool().clone()
    }
}

pub(crate) fn socket_error_text(e: &sock::SocketError) -> String {
    use sock::SocketError as E;
    match e {
        E::ConnectionRefused => "connection-refused".into(),
        E::ConnectionReset => "connection-reset".into(),
        E::ConnectionAborted => "connection-aborted".into(),
        E::NetworkUnreachable => "network-unreachable".into(),
        E::AddressInUse => "address-in-use".into(),
        E::AddressNotAvailable => "address-not-available".into(),
        E::Timeout(m) => format!("timeout: {m}"),
        E::WouldBlock => "would-block".into(),
        E::InvalidInput(m) => format!("invalid-input: {m}"),
        E::InvalidState(s) => format!("invalid-state: {}", s.operation),
        E::AccessDenied => "access-denied".into(),
        E::NameUnresolvable(m) => format!("name-unresolvable: {m}"),
        E::NotSupported(m) => format!("not-supported: {m}"),
        E::NotIdle(m) => format!("not-idle: {m}"),
        E::Tls(t) => format!("tls: {}", t.message),
        E::Other(m) => m.clone(),
    }
}

/// The memory mappings this process holds now (`/proc/self/maps`), if the system says.
pub fn mappings() -> Option<usize> {
    let maps = std::fs::read("/proc/self/maps").ok()?;
    Some(maps.iter().filter(|&&b| b == b'\n').count())
}

/// The most memory mappings a process may hold (`vm.max_map_count`), if the system says.
pub fn max_mappings() -> Option<usize> {
    std::fs::read_to_string("/proc/sys/vm/max_map_count")
        .ok()?
        .trim()
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pool_errors_read_as_the_interface_names_them() {
        let text = |e| pool_error_text(&e);
        assert_eq!(text(pool::PoolError::Exhausted("p".into())), "exhausted: p");
        assert_eq!(
            text(pool::PoolError::UnknownPool("x".into())),
            "unknown-pool: x"
        );
    }
}
