//! The wasmtime side: the artifact compiled once, pre-instantiated, instances from the pooling
//! allocator (one per user), and a socket policy per instance.

use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};

use wasmtime::component::{Component, Linker};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, Store};
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
    });
}

pub use bindings::exports::scheduler::core_libs::ip_pool as pool;
pub use bindings::exports::scheduler::executor::executor as exec;

pub struct UserCtx {
    wasi: WasiCtx,
    tls: InstanceTls,
    table: ResourceTable,
}

impl TlsHostView for UserCtx {
    fn tls_view(&mut self) -> TlsView<'_> {
        TlsView {
            table: &mut self.table,
            tls: &self.tls,
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
    binds: Mutex<Binds>,
    /// Addresses allowed one by one (`exec --bind-ip`), while no pool binding is in force.
    allowed: Mutex<HashSet<IpAddr>>,
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
                lock(&self.targets).contains(&addr)
            }
            // Actions are clients: no listening sockets.
            SocketAddrUse::TcpListen | SocketAddrUse::TcpAccept => false,
        }
    }
}

/// Address space one user's memories reserve by default (four slots of 4 GiB and 2 GiB guard).
const MEMORY_SLOT_DEFAULT: u64 = 4 * (6 << 30);
/// Address space the memory pool may take (half of a 47-bit process).
const ADDRESS_BUDGET: u64 = 64 << 40;
/// A memory's largest size (`compose::pooling_config`'s `max_memory_size`).
const MAX_MEMORY: u64 = 512 << 20;

pub struct Runtime {
    engine: Engine,
    pre: bindings::SchedulerExecutorPre<UserCtx>,
    tls: Tls,
}

/// The run's TLS clients: one for everyone, and one per tenant with a client identity of its own.
pub struct Tls {
    default: TlsClient,
    tenants: std::collections::HashMap<String, TlsClient>,
}

impl Tls {
    pub fn new(default: &TlsSettings, tenants: &[(String, TlsSettings)]) -> Result<Tls, String> {
        let mut by_tenant = std::collections::HashMap::new();
        for (tenant, settings) in tenants {
            let client = TlsClient::new(settings).map_err(|e| format!("tenant {tenant}: {e}"))?;
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
    /// What this instance's last TLS handshake negotiated.
    pub tls_last: Arc<Mutex<Option<Negotiated>>>,
}

fn fail(what: &str) -> impl Fn(wasmtime::Error) -> String + '_ {
    move |e| format!("{what}: {e:?}")
}

impl Runtime {
    /// `max_instances`: how many instances may be alive at once (pooling allocator slots).
    pub fn new(max_instances: u32, tls: Tls) -> Result<Runtime, String> {
        let slots = max_instances.max(2);
        let mut config = Config::new();
        // Memories start from their data segments copied in, not from a copy-on-write image:
        // the image is one more memory mapping per memory (three per user), and a process has
        // `vm.max_map_count` of them (65,530 by default). Resident memory is the same.
        config.memory_init_cow(false);
        // Each memory's slot reserves 4 GiB and a 2 GiB guard by default (bounds checks done by
        // the MMU): four memories a user, 24 GiB of address space, so past a few thousand users
        // the pool no longer fits in the 128 TiB of a process. Larger runs reserve each memory's
        // limit (512 MiB) instead, with bounds checks in the code.
        if u64::from(slots) * MEMORY_SLOT_DEFAULT > ADDRESS_BUDGET {
            config
                .memory_reservation(MAX_MEMORY)
                .memory_guard_size(64 << 10)
                .memory_reservation_for_growth(0);
        }
        config.allocation_strategy(InstanceAllocationStrategy::Pooling(
            compose::pooling_config(slots),
        ));
        let engine = Engine::new(&config).map_err(fail("engine"))?;
        // The artifact built into this binary, or another one (a drop-in build to compare).
        let component = match std::env::var_os("SCHEDULER_EXECUTOR") {
            Some(path) => {
                let what = format!(
                    "loading the artifact {}",
                    std::path::Path::new(&path).display()
                );
                Component::from_file(&engine, &path).map_err(fail(&what))?
            }
            None => Component::new(&engine, compose::EXECUTOR_BYTES)
                .map_err(fail("loading the built-in artifact"))?,
        };
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(fail("linking WASI"))?;
        compose::bound_stream_drops(&mut linker).map_err(fail("linking WASI streams"))?;
        compose::tls::add_to_linker(&mut linker).map_err(fail("linking wasi:tls"))?;
        let pre = linker
            .instantiate_pre(&component)
            .map_err(fail("pre-instantiating"))?;
        let pre = bindings::SchedulerExecutorPre::new(pre).map_err(fail("binding the artifact"))?;
        Ok(Runtime { engine, pre, tls })
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
        let mut b = WasiCtxBuilder::new();
        b.allow_tcp(true).allow_udp(true).allow_ip_name_lookup(true);
        b.socket_addr_check(move |addr, usage| {
            let ok = policy.check(addr, usage);
            Box::pin(async move { ok })
        });
        let mut store = Store::new(
            &self.engine,
            UserCtx {
                wasi: b.build(),
                tls,
                table: ResourceTable::new(),
            },
        );
        let bindings = self
            .pre
            .instantiate_async(&mut store)
            .await
            .map_err(fail("instantiating"))?;
        Ok(Instance {
            store,
            bindings,
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

    /// Close the instance's idle keep-alive connections (its source address was released).
    pub async fn close_idle(&mut self) -> Result<(), String> {
        self.bindings
            .scheduler_executor_executor()
            .call_close_idle(&mut self.store)
            .await
            .map_err(fail("close-idle trapped"))
    }

    pub fn pool(&self) -> pool::Guest {
        self.bindings.scheduler_core_libs_ip_pool().clone()
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

/// Short name of an action error, for reports.
pub fn error_kind(e: &exec::ActionError) -> String {
    use exec::ActionError as E;
    match e {
        E::InvalidParams(p) => format!("invalid-params({})", p.field),
        E::Dns(_) => "dns".into(),
        E::Connect(_) => "connect".into(),
        E::Timeout(p) => format!("timeout({})", phase_name(*p)),
        E::Protocol(_) => "protocol".into(),
        E::TooLarge(_) => "too-large".into(),
        E::AccessDenied(_) => "access-denied".into(),
        E::Pool(_) => "pool".into(),
        E::RedirectLoop(_) => "redirect-loop".into(),
        E::TooManyRedirects(_) => "too-many-redirects".into(),
        E::BadRedirect(_) => "bad-redirect".into(),
        E::ExportFailed(p) => format!("export-failed({})", p.field),
        E::Io(_) => "io".into(),
        E::Tls(t) => format!("tls({})", tls_reason_name(t.reason)),
    }
}

/// The interface's name of a timeout phase (`first-byte`), as in the WIT.
pub fn phase_name(p: exec::TimeoutPhase) -> &'static str {
    use exec::TimeoutPhase as P;
    match p {
        P::Dns => "dns",
        P::Connect => "connect",
        P::Tls => "tls",
        P::FirstByte => "first-byte",
        P::BetweenBytes => "between-bytes",
        P::Total => "total",
    }
}

/// A pool error for people: its WIT case name and what it carries.
pub fn pool_error_text(e: &pool::PoolError) -> String {
    // The Debug text is `Case("detail")`; the WIT name is the case in kebab-case.
    let debug = format!("{e:?}");
    // `PoolError::Exhausted("p")` (the bindings' Debug): the case after the type's path.
    let at = debug.find('(').unwrap_or(debug.len());
    let debug = match debug[..at].rfind("::") {
        Some(i) => &debug[i + 2..],
        None => &debug[..],
    };
    let (case, rest) = debug.split_at(debug.find('(').unwrap_or(debug.len()));
    let mut name = String::new();
    for (i, c) in case.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            name.push('-');
        }
        name.push(c.to_ascii_lowercase());
    }
    let detail = rest
        .trim_start_matches('(')
        .trim_end_matches(')')
        .trim_matches('"');
    if detail.is_empty() {
        name
    } else {
        format!("{name}: {detail}")
    }
}

pub fn error_text(e: &exec::ActionError) -> String {
    use exec::ActionError as E;
    match e {
        E::InvalidParams(p) | E::ExportFailed(p) => format!("{}: {}", p.field, p.message),
        E::Dns(m)
        | E::Connect(m)
        | E::Protocol(m)
        | E::TooLarge(m)
        | E::AccessDenied(m)
        | E::RedirectLoop(m)
        | E::BadRedirect(m)
        | E::Io(m) => m.clone(),
        E::Timeout(p) => format!("timed out in phase {}", phase_name(*p)),
        E::Pool(p) => pool_error_text(p),
        E::TooManyRedirects(n) => format!("more than {n} redirects"),
        E::Tls(t) => format!("TLS {}: {}", tls_reason_name(t.reason), t.message),
    }
}

/// The interface's name of a TLS failure's reason (`unknown-issuer`).
pub fn tls_reason_name(r: exec::TlsReason) -> &'static str {
    use exec::TlsReason as R;
    match r {
        R::UnknownIssuer => "unknown-issuer",
        R::NameMismatch => "name-mismatch",
        R::Expired => "expired",
        R::NotYetValid => "not-yet-valid",
        R::BadCertificate => "bad-certificate",
        R::HandshakeFailure => "handshake-failure",
        R::ProtocolVersion => "protocol-version",
        R::CertificateRequired => "certificate-required",
        R::Unsupported => "unsupported",
        R::Other => "other",
    }
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
