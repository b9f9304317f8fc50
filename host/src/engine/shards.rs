//! Users run on one single-threaded runtime per core.

/// Users run on one single-threaded runtime per core, each with its own event loop (as wrk
/// runs one per thread): a user's socket events wake the thread that runs it, instead of
/// waking and handing work between the threads of one shared runtime, which cost more than
/// the requests themselves under load.
pub(super) struct Shards {
    pub(super) handles: Vec<tokio::runtime::Handle>,
    pub(super) threads: Vec<(
        std::thread::JoinHandle<()>,
        tokio::sync::oneshot::Sender<()>,
    )>,
}

impl Shards {
    pub(super) fn start(users: usize) -> Result<Shards, String> {
        let cores = threads();
        let mut shards = Shards {
            handles: Vec::new(),
            threads: Vec::new(),
        };
        for i in 0..cores.min(users.max(1)) {
            let (handle_tx, handle_rx) = std::sync::mpsc::channel();
            let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
            let thread = std::thread::Builder::new()
                .name(format!("users-{i}"))
                .spawn(move || {
                    let rt = match tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                    {
                        Ok(rt) => rt,
                        Err(e) => return drop(handle_tx.send(Err(e.to_string()))),
                    };
                    let _ = handle_tx.send(Ok(rt.handle().clone()));
                    rt.block_on(async {
                        let _ = stop_rx.await;
                    });
                })
                .map_err(|e| format!("starting a user thread: {e}"))?;
            let handle = handle_rx
                .recv()
                .map_err(|e| e.to_string())
                .and_then(|r| r)
                .map_err(|e| format!("starting a user runtime: {e}"))?;
            shards.handles.push(handle);
            shards.threads.push((thread, stop_tx));
        }
        Ok(shards)
    }

    pub(super) fn next(&self, user: u32) -> &tokio::runtime::Handle {
        &self.handles[user as usize % self.handles.len()]
    }
}

impl Drop for Shards {
    fn drop(&mut self) {
        for (thread, stop) in self.threads.drain(..) {
            let _ = stop.send(());
            let _ = thread.join();
        }
    }
}

/// How many threads run users: `SCHEDULER_THREADS` when set to a positive number (processes
/// sharing one machine, as several segments or workers do, each take a share rather than all
/// contending for every core), else the cores this process may use.
pub fn threads() -> usize {
    std::env::var("SCHEDULER_THREADS")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .filter(|&n| n > 0)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}
