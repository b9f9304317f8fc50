//! The one pool authority of a run: a dedicated instance of the artifact whose exported ip-pool
//! the host calls to allocate and release every user's address. Users' own instances never
//! allocate, so no address can be held twice whatever the strategy. With a state dir, every
//! change is followed by the pool's snapshot, written atomically (a new temp file created
//! exclusively, mode 0600, fsync, rename, directory fsync). One process at a time holds a state
//! dir (an exclusive lock on `STATE_DIR/lock`).
//!
//! With etcd (`--etcd`), the pools live there and are shared by every process of the run: this
//! authority claims blocks of the address space that a pool's ranges touch
//! (`crate::authority::etcd`), allocates inside them with a local pool per block
//! (`POOL#INDEX`), and gives a block back when it empties.

pub mod etcd;
/// Segments' result files kept in etcd, for `merge --etcd`.
pub mod published;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use std::collections::HashMap;
use std::time::Duration;

use tokio::sync::Mutex;

use crate::format::scenario::{PoolSpec, Strategy};
use crate::runtime::{Instance, Policy, Runtime, pool};
use etcd::Etcd;

pub const STATE_FILE: &str = "pool-state.bin";
pub const LOCK_FILE: &str = "lock";

pub struct Authority {
    inst: Mutex<Instance>,
    state_dir: Option<PathBuf>,
    /// Held for the authority's life: no other process uses the same state dir.
    _lock: Option<std::fs::File>,
    /// The first time the state could not be written (or etcd was lost); the run stops
    /// (`stop`) and reports it.
    fault: Arc<std::sync::Mutex<Option<String>>>,
    stop: Arc<AtomicBool>,
    /// The pools in etcd, when the run shares them with other processes.
    ipam: Option<EtcdIpam>,
    /// Set when the etcd lease may have expired (no keep-alive acknowledged in time): the
    /// addresses may be another process's now, so in-flight requests are cut at once.
    expired: Arc<AtomicBool>,
}

/// `--etcd URL` and `--lease-ttl`.
#[derive(Debug, Clone)]
pub struct EtcdOptions {
    pub url: String,
    pub lease_ttl: Duration,
    /// How long to retry etcd at the start.
    pub wait: Duration,
    /// For `https://`: the CA to trust and the client's certificate.
    pub tls: compose::tls::TlsSettings,
}

/// This process's side of the pools in etcd.
struct EtcdIpam {
    etcd: Etcd,
    lease: i64,
    /// The value of the block keys this process holds.
    me: String,
    /// Ends the keep-alive task.
    done: Arc<AtomicBool>,
    /// Touched only under the authority's instance lock.
    state: std::sync::Mutex<IpamState>,
}

#[derive(Default)]
struct IpamState {
    pools: HashMap<String, PoolBlocks>,
    /// (pool, tenant, resource) -> the local pool of the block its address is from.
    owners: HashMap<(String, String, String), String>,
}

struct PoolBlocks {
    blocks: Vec<etcd::Block>,
    /// Indices of the blocks this process holds, in the order claimed.
    claimed: Vec<usize>,
    strategy: pool::Strategy,
}

/// Who holds what in the blocks: (pool, tenant, resource).
fn owner_key(pool_id: &str, owner: &pool::Owner) -> (String, String, String) {
    (
        pool_id.to_string(),
        owner.tenant.clone(),
        owner.resource.clone(),
    )
}

fn block_pool(pool: &str, index: usize) -> String {
    format!("{pool}#{index}")
}

/// Where a run's processes say that a threshold stopped it.
fn abort_key(run_id: &str) -> String {
    format!("/scheduler/runs/v1/{run_id}/abort")
}

fn ip_text(k: u128) -> String {
    crate::format::scenario::key_ip(k).to_string()
}

fn strategy(s: Strategy) -> pool::Strategy {
    match s {
        Strategy::Sequential => pool::Strategy::Sequential,
        Strategy::RoundRobin => pool::Strategy::RoundRobin,
        Strategy::Random => pool::Strategy::Random,
    }
}

fn call<T>(r: wasmtime::Result<T>) -> Result<T, String> {
    r.map_err(|e| format!("ip-pool trapped: {e:?}"))
}

pub fn owner(tenant: &str, resource: &str) -> pool::Owner {
    pool::Owner {
        tenant: tenant.into(),
        resource: resource.into(),
        resource_type: pool::ResourceType::Custom("user".into()),
    }
}

/// The state file replaced whole, as every output file is (`output::replace_whole`), readable
/// by this user only (0600). On failure the last good state stays.
pub fn write_atomically(dir: &Path, bytes: &[u8]) -> std::io::Result<()> {
    crate::results::output::replace_whole(&dir.join(STATE_FILE), bytes, 0o600)
}

/// A lease from etcd, retried with backoff (0.1 s doubling to 2 s) for up to `o.wait`: pods
/// of a Job may start before etcd is ready. With it, when it was asked for (its TTL counts
/// from when etcd granted it, which is after).
async fn grant(etcd: &Etcd, o: &EtcdOptions) -> Result<(i64, tokio::time::Instant), String> {
    let give_up = tokio::time::Instant::now() + o.wait;
    let mut backoff = Duration::from_millis(100);
    let mut told = false;
    loop {
        let asked = tokio::time::Instant::now();
        match etcd.grant(o.lease_ttl).await {
            Ok(lease) => return Ok((lease, asked)),
            Err(e) if asked + backoff < give_up => {
                if !told {
                    eprintln!(
                        "scheduler: etcd at {} not ready ({e}); retrying for up to {:?}",
                        o.url, o.wait
                    );
                    told = true;
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(2));
            }
            Err(e) => {
                return Err(format!(
                    "{e} (is etcd running at {}? tried for {:?})",
                    o.url, o.wait
                ));
            }
        }
    }
}

/// Where a lost lease is told: the run's fault, its stop, and `expired` when the addresses
/// may already be another process's.
struct Lost {
    fault: Arc<std::sync::Mutex<Option<String>>>,
    stop: Arc<AtomicBool>,
    expired: Arc<AtomicBool>,
}

impl Lost {
    fn tell(&self, why: String, expired: bool) {
        self.fault
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get_or_insert(why);
        if expired {
            self.expired.store(true, Ordering::SeqCst);
        }
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// Keep the lease alive every third of its TTL. etcd counts the TTL from when it handles a
/// keep-alive, which is after this process sent it: so the lease is surely alive until the
/// last acknowledged keep-alive's send time plus the TTL. A margin before that, with no
/// newer acknowledgement (etcd paused, the network cut), the addresses are given up: the run
/// stops and in-flight requests are cut, so no address is ever used by two processes at
/// once, whatever etcd does.
async fn keep_lease(
    e: Etcd,
    (lease, ttl, mut alive_until): (i64, Duration, tokio::time::Instant),
    done: Arc<AtomicBool>,
    lost: Lost,
) {
    let every = (ttl / 3).max(Duration::from_millis(200));
    let margin = (ttl / 4).min(Duration::from_secs(2));
    loop {
        let give_up = alive_until - margin;
        tokio::time::sleep_until(give_up.min(tokio::time::Instant::now() + every)).await;
        if done.load(Ordering::SeqCst) {
            return;
        }
        let now = tokio::time::Instant::now();
        if now >= give_up {
            let why = format!(
                "etcd lease {lease:x}: no keep-alive acknowledged for {:?}; its addresses are \
                 given up before it can expire",
                ttl - margin
            );
            return lost.tell(why, true);
        }
        match tokio::time::timeout(give_up - now, e.keep_alive(lease)).await {
            Ok(Ok(true)) => alive_until = now + ttl,
            Ok(Ok(false)) => {
                let why = format!("etcd lease {lease:x} expired; its addresses are given up");
                return lost.tell(why, true);
            }
            // etcd unreachable: no more addresses are taken and the run stops, and the lease
            // is still watched while it drains (the next turns may renew it, or give it up).
            Ok(Err(err)) => lost.tell(
                format!("etcd lost: {err}; no more addresses are taken"),
                false,
            ),
            // No answer before the margin: the next turn gives up.
            Err(_) => {}
        }
    }
}

/// Lock `dir` for this process, or say which process-wide problem stops it.
fn lock_dir(dir: &Path) -> Result<std::fs::File, String> {
    use std::os::unix::fs::OpenOptionsExt;
    let path = dir.join(LOCK_FILE);
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&path)
        .map_err(|e| format!("state dir lock {}: {e}", path.display()))?;
    match f.try_lock() {
        Ok(()) => Ok(f),
        Err(std::fs::TryLockError::WouldBlock) => Err(format!(
            "state dir {} is in use by another scheduler process (its lock is held)",
            dir.display()
        )),
        Err(std::fs::TryLockError::Error(e)) => {
            Err(format!("locking state dir {}: {e}", dir.display()))
        }
    }
}

impl Authority {
    pub async fn new(
        runtime: &Runtime,
        state_dir: Option<PathBuf>,
        stop: Arc<AtomicBool>,
    ) -> Result<Authority, String> {
        let mut inst = runtime
            .instantiate(Arc::new(Policy::default()), None)
            .await?;
        let mut lock = None;
        if let Some(dir) = &state_dir {
            std::fs::create_dir_all(dir)
                .map_err(|e| format!("state dir {}: {e}", dir.display()))?;
            lock = Some(lock_dir(dir)?);
            match std::fs::read(dir.join(STATE_FILE)) {
                Ok(bytes) => {
                    let f = inst.pool();
                    call(f.call_restore(&mut inst.store, &bytes).await)?.map_err(|e| {
                        format!("restoring {}: {e:?}", dir.join(STATE_FILE).display())
                    })?;
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(format!("reading pool state: {e}")),
            }
        }
        Ok(Authority {
            inst: Mutex::new(inst),
            state_dir,
            _lock: lock,
            fault: Arc::new(std::sync::Mutex::new(None)),
            stop,
            ipam: None,
            expired: Arc::new(AtomicBool::new(false)),
        })
    }

    /// Share the pools through etcd: a lease for this process (kept alive until `close`; its
    /// loss stops the run with a report), blocks claimed as users need addresses.
    pub async fn use_etcd(&mut self, o: &EtcdOptions) -> Result<(), String> {
        let etcd = Etcd::new(&o.url, &o.tls)?;
        let (lease, asked) = grant(&etcd, o).await?;
        let me = format!(
            "{}:{}:{lease:x}",
            std::fs::read_to_string("/proc/sys/kernel/hostname")
                .unwrap_or_default()
                .trim(),
            std::process::id()
        );
        let done = Arc::new(AtomicBool::new(false));
        let lost = Lost {
            fault: self.fault.clone(),
            stop: self.stop.clone(),
            expired: self.expired.clone(),
        };
        let alive_until = asked + o.lease_ttl;
        tokio::spawn(keep_lease(
            etcd.clone(),
            (lease, o.lease_ttl, alive_until),
            done.clone(),
            lost,
        ));
        self.ipam = Some(EtcdIpam {
            etcd,
            lease,
            me,
            done,
            state: std::sync::Mutex::new(IpamState::default()),
        });
        Ok(())
    }

    /// Whether the etcd lease may have expired: the addresses are no longer this process's.
    /// Tell every process of run `run_id` to stop: a threshold with `abort_on_fail` was
    /// crossed here (best effort: etcd unreachable is the run's problem elsewhere).
    pub async fn say_abort(&self, run_id: &str, why: &str) {
        if let Some(ipam) = &self.ipam {
            let _ = ipam.etcd.put(&abort_key(run_id), why).await;
        }
    }

    /// Whether a process of run `run_id` said to stop, and why.
    pub async fn abort_said(&self, run_id: &str) -> Option<String> {
        let ipam = self.ipam.as_ref()?;
        let key = abort_key(run_id);
        let kvs = ipam.etcd.get_prefix(&key).await.ok()?;
        kvs.into_iter().find(|(k, _)| *k == key).map(|(_, v)| v)
    }

    pub fn expired(&self) -> bool {
        self.expired.load(Ordering::SeqCst)
    }

    /// End the etcd lease (the blocks still held go back at once).
    pub async fn close(&self) {
        if let Some(ipam) = &self.ipam {
            ipam.done.store(true, Ordering::SeqCst);
            let _ = ipam.etcd.revoke(ipam.lease).await;
        }
    }

    /// Why the state could not be written (or etcd was lost), if so.
    pub fn fault(&self) -> Option<String> {
        self.fault.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// etcd failed a call: the run stops taking addresses and ends with a report saying so.
    fn etcd_lost(&self, e: String) -> String {
        let text = format!("etcd lost: {e}; no more addresses are taken");
        self.fault
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get_or_insert_with(|| text.clone());
        self.stop.store(true, Ordering::SeqCst);
        text
    }

    /// Write the snapshot. A failure (disk full, read-only) keeps the last good file, stops the
    /// run and is reported with it; the change itself stands in memory, so the run's own
    /// bookkeeping stays whole.
    async fn persist(&self, inst: &mut Instance) -> Result<(), String> {
        let Some(dir) = &self.state_dir else {
            return Ok(());
        };
        let f = inst.pool();
        let bytes = call(f.call_snapshot(&mut inst.store).await)?;
        if let Err(e) = write_atomically(dir, &bytes) {
            let mut fault = self.fault.lock().unwrap_or_else(|e| e.into_inner());
            fault.get_or_insert_with(|| {
                format!(
                    "writing pool state to {}: {e} (the file keeps the last good state)",
                    dir.display()
                )
            });
            self.stop.store(true, Ordering::SeqCst);
        }
        Ok(())
    }

    /// Create the scenario's pools unless a restored state has them already (with etcd: cut
    /// them into blocks, claimed later).
    pub async fn setup(&self, pools: &[PoolSpec]) -> Result<(), String> {
        if let Some(ipam) = &self.ipam {
            let mut st = ipam.state.lock().unwrap_or_else(|e| e.into_inner());
            for p in pools {
                let mut intervals = Vec::new();
                for r in &p.ranges {
                    intervals.push(
                        crate::format::scenario::check_cidr(r, p.reserve_network_broadcast)
                            .map_err(|e| format!("pool {} range {r}: {e}", p.id))?,
                    );
                }
                st.pools.insert(
                    p.id.clone(),
                    PoolBlocks {
                        blocks: etcd::blocks(&intervals),
                        claimed: Vec::new(),
                        strategy: strategy(p.strategy),
                    },
                );
            }
            return Ok(());
        }
        let mut inst = self.inst.lock().await;
        let f = inst.pool();
        let existing = call(f.call_list_pools(&mut inst.store).await)?;
        for p in pools {
            if existing.contains(&p.id) {
                // Restored from the state dir: it must be the scenario's pool still.
                let had = call(f.call_list_ranges(&mut inst.store, &p.id).await)?
                    .map_err(|e| format!("pool {}: {e:?}", p.id))?;
                self.check_restored(p, &had)?;
                continue;
            }
            let cfg = pool::PoolConfig {
                strategy: strategy(p.strategy),
                lease_ttl_ms: None,
                seed: 0x5eed,
            };
            call(f.call_create_pool(&mut inst.store, &p.id, cfg).await)?
                .map_err(|e| format!("pool {}: {e:?}", p.id))?;
            for r in &p.ranges {
                // The same addresses in every mode: the range's first to last as
                // `check_cidr` gives them.
                let (a, b) = crate::format::scenario::check_cidr(r, p.reserve_network_broadcast)
                    .map_err(|e| format!("pool {} range {r}: {e}", p.id))?;
                let (a, b) = (ip_text(a), ip_text(b));
                call(f.call_add_range(&mut inst.store, &p.id, &a, &b).await)?
                    .map_err(|e| format!("pool {} range {r}: {e:?}", p.id))?;
            }
        }
        self.persist(&mut inst).await
    }

    /// A pool restored from the state dir with other addresses than the scenario gives it is
    /// refused: its bindings would hand out addresses the scenario no longer names.
    fn check_restored(&self, p: &PoolSpec, had: &[pool::RangeInfo]) -> Result<(), String> {
        let mut want = Vec::new();
        for r in &p.ranges {
            let (a, b) = crate::format::scenario::check_cidr(r, p.reserve_network_broadcast)
                .map_err(|e| format!("pool {} range {r}: {e}", p.id))?;
            want.push(format!("{}-{}", ip_text(a), ip_text(b)));
        }
        let mut got: Vec<String> = had
            .iter()
            .map(|r| format!("{}-{}", r.first, r.last))
            .collect();
        want.sort();
        got.sort();
        if want == got {
            return Ok(());
        }
        let dir = self
            .state_dir
            .as_deref()
            .map_or_else(String::new, |d| d.display().to_string());
        Err(format!(
            "pool {}: the state in {dir} has its addresses as {} and the scenario gives {}; \
             use another --state-dir for this scenario, or remove {dir}/{STATE_FILE} to start \
             afresh",
            p.id,
            got.join(", "),
            want.join(", ")
        ))
    }

    pub async fn allocate(
        &self,
        pool_id: &str,
        owner: &pool::Owner,
    ) -> Result<Result<pool::Binding, pool::PoolError>, String> {
        if let Some(ipam) = &self.ipam {
            return self.allocate_in_blocks(ipam, pool_id, owner).await;
        }
        let mut inst = self.inst.lock().await;
        let f = inst.pool();
        let r = call(f.call_allocate(&mut inst.store, pool_id, owner).await)?;
        if r.is_ok() {
            self.persist(&mut inst).await?;
        }
        Ok(r)
    }

    pub async fn release(&self, pool_id: &str, owner: &pool::Owner) -> Result<(), String> {
        if let Some(ipam) = &self.ipam {
            return self.release_in_blocks(ipam, pool_id, owner).await;
        }
        let mut inst = self.inst.lock().await;
        let f = inst.pool();
        if call(f.call_release_owner(&mut inst.store, pool_id, owner).await)?.is_ok() {
            self.persist(&mut inst).await?;
        }
        Ok(())
    }

    /// The local pools a pool's addresses are in: itself, or (etcd) its claimed blocks'.
    fn local_pools(&self, pool_id: &str) -> Vec<String> {
        match &self.ipam {
            None => vec![pool_id.to_string()],
            Some(ipam) => ipam
                .state
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .pools
                .get(pool_id)
                .map(|p| p.claimed.iter().map(|&i| block_pool(pool_id, i)).collect())
                .unwrap_or_default(),
        }
    }

    pub async fn stats(&self, pool_id: &str) -> Result<pool::PoolStats, String> {
        if self.ipam.is_some() {
            let mut inst = self.inst.lock().await;
            let f = inst.pool();
            let n = |s: &str| s.parse::<u128>().unwrap_or(0);
            let (mut total, mut reserved, mut available) = (0u128, 0u128, 0u128);
            let mut all = pool::PoolStats {
                total: String::new(),
                allocated: 0,
                reserved: String::new(),
                available: String::new(),
                ranges: 0,
                free_fragments: 0,
                tenants: 0,
            };
            for local in self.local_pools(pool_id) {
                let st = call(f.call_stats(&mut inst.store, &local).await)?
                    .map_err(|e| format!("{e:?}"))?;
                total += n(&st.total);
                reserved += n(&st.reserved);
                available += n(&st.available);
                all.allocated += st.allocated;
                all.ranges += st.ranges;
                all.free_fragments += st.free_fragments;
                all.tenants = all.tenants.max(st.tenants);
            }
            (all.total, all.reserved, all.available) = (
                total.to_string(),
                reserved.to_string(),
                available.to_string(),
            );
            return Ok(all);
        }
        let mut inst = self.inst.lock().await;
        let f = inst.pool();
        call(f.call_stats(&mut inst.store, pool_id).await)?.map_err(|e| format!("{e:?}"))
    }

    pub async fn bindings(
        &self,
        pool_id: &str,
        tenant: &str,
    ) -> Result<Vec<pool::Binding>, String> {
        let locals = self.local_pools(pool_id);
        let mut inst = self.inst.lock().await;
        let f = inst.pool();
        let mut all = Vec::new();
        for local in locals {
            all.extend(
                call(f.call_list_by_tenant(&mut inst.store, &local, tenant).await)?
                    .map_err(|e| format!("{e:?}"))?,
            );
        }
        Ok(all)
    }

    /// Allocate from this process's blocks of the pool, claiming one more from etcd when they
    /// are full; `exhausted` when no block is left to claim.
    async fn allocate_in_blocks(
        &self,
        ipam: &EtcdIpam,
        pool_id: &str,
        owner: &pool::Owner,
    ) -> Result<Result<pool::Binding, pool::PoolError>, String> {
        if let Some(e) = self.fault() {
            return Err(e);
        }
        let mut inst = self.inst.lock().await;
        let f = inst.pool();
        let key = owner_key(pool_id, owner);
        let (held, claimed, count, strategy) = {
            let st = ipam.state.lock().unwrap_or_else(|e| e.into_inner());
            let Some(p) = st.pools.get(pool_id) else {
                return Ok(Err(pool::PoolError::UnknownPool(pool_id.to_string())));
            };
            (
                st.owners.get(&key).cloned(),
                p.claimed.clone(),
                p.blocks.len(),
                p.strategy,
            )
        };
        // The owner's binding, or a new one from the blocks held, in the order claimed.
        let locals: Vec<String> = held
            .into_iter()
            .chain(claimed.iter().map(|&i| block_pool(pool_id, i)))
            .collect();
        for local in &locals {
            match call(f.call_allocate(&mut inst.store, local, owner).await)? {
                Ok(b) => {
                    let mut st = ipam.state.lock().unwrap_or_else(|e| e.into_inner());
                    st.owners.insert(key, local.clone());
                    return Ok(Ok(b));
                }
                Err(pool::PoolError::Exhausted(_)) => {}
                Err(e) => return Ok(Err(e)),
            }
        }
        // Claim a block, starting from a place of this process's own so that processes do
        // not all race for the same first block.
        let start = (ipam.lease as u64 as usize) % count.max(1);
        for i in 0..count {
            let index = (start + i) % count;
            if claimed.contains(&index) {
                continue;
            }
            let block = {
                let st = ipam.state.lock().unwrap_or_else(|e| e.into_inner());
                st.pools[pool_id].blocks[index].clone()
            };
            if !ipam
                .etcd
                .claim(&block, &ipam.me, ipam.lease)
                .await
                .map_err(|e| self.etcd_lost(e))?
            {
                continue;
            }
            let local = block_pool(pool_id, index);
            let cfg = pool::PoolConfig {
                strategy,
                lease_ttl_ms: None,
                seed: 0x5eed,
            };
            call(f.call_create_pool(&mut inst.store, &local, cfg).await)?
                .map_err(|e| format!("block {local}: {e:?}"))?;
            for &(a, b) in &block.ranges {
                call(
                    f.call_add_range(&mut inst.store, &local, &ip_text(a), &ip_text(b))
                        .await,
                )?
                .map_err(|e| format!("block {local}: {e:?}"))?;
            }
            {
                let mut st = ipam.state.lock().unwrap_or_else(|e| e.into_inner());
                if let Some(p) = st.pools.get_mut(pool_id) {
                    p.claimed.push(index);
                }
            }
            let r = call(f.call_allocate(&mut inst.store, &local, owner).await)?;
            if r.is_ok() {
                let mut st = ipam.state.lock().unwrap_or_else(|e| e.into_inner());
                st.owners.insert(key, local);
            }
            return Ok(r);
        }
        Ok(Err(pool::PoolError::Exhausted(pool_id.to_string())))
    }

    /// Release the owner's address; a block left empty goes back to etcd.
    async fn release_in_blocks(
        &self,
        ipam: &EtcdIpam,
        pool_id: &str,
        owner: &pool::Owner,
    ) -> Result<(), String> {
        let mut inst = self.inst.lock().await;
        let f = inst.pool();
        let key = owner_key(pool_id, owner);
        let Some(local) = ipam
            .state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .owners
            .remove(&key)
        else {
            return Ok(());
        };
        let _ = call(f.call_release_owner(&mut inst.store, &local, owner).await)?;
        let st = call(f.call_stats(&mut inst.store, &local).await)?;
        if st.is_ok_and(|st| st.allocated == 0) {
            let index: usize = local
                .rsplit_once('#')
                .and_then(|(_, i)| i.parse().ok())
                .unwrap_or(usize::MAX);
            let _ = call(f.call_delete_pool(&mut inst.store, &local).await)?;
            let key = {
                let mut st = ipam.state.lock().unwrap_or_else(|e| e.into_inner());
                st.pools.get_mut(pool_id).and_then(|p| {
                    p.claimed.retain(|&i| i != index);
                    p.blocks.get(index).map(|b| etcd::cell_key(b.start, b.size))
                })
            };
            let Some(key) = key else {
                return Ok(());
            };
            // Only if it is still ours (a lost lease may have let another process take it).
            ipam.etcd
                .delete_if(&key, &ipam.me)
                .await
                .map_err(|e| self.etcd_lost(e))?;
        }
        Ok(())
    }
}
