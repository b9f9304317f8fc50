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
        let cores = threads()?;
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

/// The `SCHEDULER_*` settings a run reads (`SCHEDULER_THREADS`, `SCHEDULER_MEMORY`,
/// `SCHEDULER_SOCKETS`), checked before it starts, so that a bad one is refused as a bad flag
/// is (a usage error), not met halfway into setting up.
pub fn check_settings() -> Result<(), String> {
    threads()?;
    compose::memory::MemoryMode::for_run()?;
    compose::sockets::SocketsImpl::for_run()?;
    Ok(())
}

/// How many threads run users: `SCHEDULER_THREADS` when set (processes sharing one machine,
/// as several segments or workers do, each take a share rather than all contending for every
/// core), else the cores this process may use.
fn threads() -> Result<usize, String> {
    let cores = || std::thread::available_parallelism().map_or(1, |n| n.get());
    match std::env::var("SCHEDULER_THREADS") {
        Ok(v) if !v.is_empty() => parse_threads(&v),
        _ => Ok(cores()),
    }
}

fn parse_threads(v: &str) -> Result<usize, String> {
    match v.trim().parse::<usize>() {
        Ok(n) if (1..=1024).contains(&n) => Ok(n),
        _ => Err(format!(
            "SCHEDULER_THREADS={v:?}: expected a number of threads from 1 to 1024"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::parse_threads;

    #[test]
    fn thread_counts_are_read_or_refused() {
        assert_eq!(parse_threads("3"), Ok(3));
        assert_eq!(parse_threads(" 1 "), Ok(1));
        for bad in ["0", "-1", "two", "", "1025"] {
            let e = parse_threads(bad).unwrap_err();
            assert!(e.contains("SCHEDULER_THREADS"), "{e}");
        }
    }
}
