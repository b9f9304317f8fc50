//! The one pool authority of a run: a dedicated instance of the artifact whose exported ip-pool
//! the host calls to allocate and release every user's address. Users' own instances never
//! allocate, so no address can be held twice whatever the strategy. With a state dir, every
//! change is followed by the pool's snapshot, written atomically (a new temp file created
//! exclusively, mode 0600, fsync, rename, directory fsync). One process at a time holds a state
//! dir (an exclusive lock on `STATE_DIR/lock`).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::Mutex;

use crate::runtime::{Instance, Policy, Runtime, pool};
use crate::scenario::{PoolSpec, Strategy};

pub const STATE_FILE: &str = "pool-state.bin";
pub const LOCK_FILE: &str = "lock";

pub struct Authority {
    inst: Mutex<Instance>,
    state_dir: Option<PathBuf>,
    /// Held for the authority's life: no other process uses the same state dir.
    _lock: Option<std::fs::File>,
    /// The first time the state could not be written; the run stops (`stop`) and reports it.
    fault: std::sync::Mutex<Option<String>>,
    stop: Arc<AtomicBool>,
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

/// A new file in `dir` (created exclusively: no link is followed, nothing existing is
/// overwritten; mode 0600), synced, then renamed over the state file, and the dir synced. On
/// failure the temp file is removed and the last good state stays.
pub fn write_atomically(dir: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut tmp = tempfile::Builder::new()
        .prefix(&format!(".{STATE_FILE}."))
        .suffix(".tmp")
        .tempfile_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(dir.join(STATE_FILE)).map_err(|e| e.error)?;
    std::fs::File::open(dir)?.sync_all()
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
            fault: std::sync::Mutex::new(None),
            stop,
        })
    }

    /// Why the state could not be written, if it could not.
    pub fn fault(&self) -> Option<String> {
        self.fault.lock().unwrap_or_else(|e| e.into_inner()).clone()
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

    /// Create the scenario's pools unless a restored state has them already.
    pub async fn setup(&self, pools: &[PoolSpec]) -> Result<(), String> {
        let mut inst = self.inst.lock().await;
        let f = inst.pool();
        let existing = call(f.call_list_pools(&mut inst.store).await)?;
        for p in pools {
            if existing.contains(&p.id) {
                continue;
            }
            let strategy = match p.strategy {
                Strategy::Sequential => pool::Strategy::Sequential,
                Strategy::RoundRobin => pool::Strategy::RoundRobin,
                Strategy::Random => pool::Strategy::Random,
            };
            let cfg = pool::PoolConfig {
                strategy,
                lease_ttl_ms: None,
                seed: 0x5eed,
            };
            call(f.call_create_pool(&mut inst.store, &p.id, cfg).await)?
                .map_err(|e| format!("pool {}: {e:?}", p.id))?;
            for r in &p.ranges {
                let added = match r.split_once('-') {
                    Some((a, b)) if !r.contains('/') => call(
                        f.call_add_range(&mut inst.store, &p.id, a.trim(), b.trim())
                            .await,
                    )?,
                    _ => call(f.call_add_cidr(&mut inst.store, &p.id, r, true).await)?,
                };
                added.map_err(|e| format!("pool {} range {r}: {e:?}", p.id))?;
            }
        }
        self.persist(&mut inst).await
    }

    pub async fn allocate(
        &self,
        pool_id: &str,
        owner: &pool::Owner,
    ) -> Result<Result<pool::Binding, pool::PoolError>, String> {
        let mut inst = self.inst.lock().await;
        let f = inst.pool();
        let r = call(f.call_allocate(&mut inst.store, pool_id, owner).await)?;
        if r.is_ok() {
            self.persist(&mut inst).await?;
        }
        Ok(r)
    }

    pub async fn release(&self, pool_id: &str, owner: &pool::Owner) -> Result<(), String> {
        let mut inst = self.inst.lock().await;
        let f = inst.pool();
        if call(f.call_release_owner(&mut inst.store, pool_id, owner).await)?.is_ok() {
            self.persist(&mut inst).await?;
        }
        Ok(())
    }

    pub async fn stats(&self, pool_id: &str) -> Result<pool::PoolStats, String> {
        let mut inst = self.inst.lock().await;
        let f = inst.pool();
        call(f.call_stats(&mut inst.store, pool_id).await)?.map_err(|e| format!("{e:?}"))
    }

    pub async fn bindings(
        &self,
        pool_id: &str,
        tenant: &str,
    ) -> Result<Vec<pool::Binding>, String> {
        let mut inst = self.inst.lock().await;
        let f = inst.pool();
        call(
            f.call_list_by_tenant(&mut inst.store, pool_id, tenant)
                .await,
        )?
        .map_err(|e| format!("{e:?}"))
    }
}
