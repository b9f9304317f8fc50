//! A scenario's `servers:` while something needs them: `scheduler serve`, or a run (started
//! before the users, stopped after them). Each instance is a server artifact instance on its
//! own address, served in slices so a stop is seen within one.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::format::scenario::ServerSpec;
use crate::runtime::server::{Served, ServerRuntime};

/// How long one `serve` call of an instance lasts: the stop flag is looked at between calls.
const SLICE_MS: u64 = 200;

/// What an instance answered, by name (`ID[I]`) and URL; or why it stopped.
#[derive(Debug, Clone)]
pub struct ServerEnd {
    pub name: String,
    pub url: String,
    pub served: Result<Served, String>,
}

impl ServerEnd {
    /// As the report has it.
    pub fn served(&self) -> crate::results::report::ServerServed {
        let mut s = crate::results::report::ServerServed {
            name: self.name.clone(),
            url: self.url.clone(),
            ..Default::default()
        };
        match &self.served {
            Ok(x) => {
                s.connections = x.connections;
                s.requests = x.requests;
                s.statuses = x.statuses.clone();
                s.resets = x.resets;
                s.peers = x.peers.clone();
            }
            Err(e) => s.error = Some(e.clone()),
        }
        s
    }
}

/// The instances running.
pub struct Running {
    pub stop: Arc<AtomicBool>,
    tasks: tokio::task::JoinSet<ServerEnd>,
}

/// Where an instance says it listens (its name and URL), or why it cannot; and what prints an
/// access-log line (the instance's name, the line).
type Reports = (
    tokio::sync::mpsc::Sender<Result<String, String>>,
    fn(&str, &str),
);

/// Run instance `i` of `spec` (its directories under `base`) until `stop`; `started` gets its URL once it listens, or the
/// error that kept it from it; `line` each access-log line.
async fn instance(
    rt: Arc<ServerRuntime>,
    (spec, base): (Arc<ServerSpec>, Arc<std::path::PathBuf>),
    i: usize,
    stop: Arc<AtomicBool>,
    (started, line): Reports,
) -> ServerEnd {
    let name = format!("{}[{i}]", spec.id);
    let end = |url: &str, served| ServerEnd {
        name: name.clone(),
        url: url.to_string(),
        served,
    };
    let listening = match rt
        .instantiate(spec.addresses[i], &spec.preopens(&base))
        .await
    {
        Ok(mut inst) => match inst.start(&spec.config_for(i)).await {
            Ok(Ok(bound)) => Ok((inst, format!("http://{bound}"))),
            Ok(Err(e)) | Err(e) => Err(e),
        },
        Err(e) => Err(e),
    };
    let (mut inst, url) = match listening {
        Ok(x) => x,
        Err(e) => {
            let _ = started.send(Err(format!("server {name}: {e}"))).await;
            return end("", Err(e));
        }
    };
    let _ = started.send(Ok(format!("{name} {url}"))).await;
    let mut last = None;
    while !stop.load(Ordering::SeqCst) {
        match inst.serve(SLICE_MS).await {
            Ok(Ok(mut served)) => {
                for l in std::mem::take(&mut served.log) {
                    line(&name, &l);
                }
                last = Some(served);
            }
            Ok(Err(e)) | Err(e) => return end(&url, Err(e)),
        }
    }
    let _ = inst.stop().await;
    end(
        &url,
        last.ok_or_else(|| "stopped before serving".to_string()),
    )
}

/// Start every instance of `specs`; each listening is announced through `announce` (its
/// name and URL). Fails (after stopping what started) if one cannot listen.
pub async fn start(
    specs: &[ServerSpec],
    base: &std::path::Path,
    announce: fn(&str),
    line: fn(&str, &str),
) -> Result<Running, String> {
    let rt = Arc::new(ServerRuntime::new()?);
    let base = Arc::new(base.to_path_buf());
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = tokio::task::JoinSet::new();
    let count: usize = specs.iter().map(|s| s.addresses.len()).sum();
    let (tx, mut rx) = tokio::sync::mpsc::channel(count.max(1));
    for spec in specs {
        let spec = Arc::new(spec.clone());
        for i in 0..spec.addresses.len() {
            let (rt, stop, tx) = (rt.clone(), stop.clone(), tx.clone());
            let at = (spec.clone(), base.clone());
            tasks.spawn(async move { instance(rt, at, i, stop, (tx, line)).await });
        }
    }
    drop(tx);
    let mut running = Running { stop, tasks };
    for _ in 0..count {
        match rx.recv().await {
            Some(Ok(text)) => announce(&text),
            Some(Err(e)) => {
                running.finish().await;
                return Err(e);
            }
            None => break,
        }
    }
    Ok(running)
}

impl Running {
    /// Stop every instance: what each answered, by name.
    pub async fn finish(&mut self) -> Vec<ServerEnd> {
        self.stop.store(true, Ordering::SeqCst);
        let mut ended = Vec::new();
        while let Some(r) = self.tasks.join_next().await {
            ended.push(r.unwrap_or_else(|e| ServerEnd {
                name: "?".into(),
                url: String::new(),
                served: Err(e.to_string()),
            }));
        }
        ended.sort_by(|a, b| a.name.cmp(&b.name));
        ended
    }

    /// Wait until an instance ends on its own (it failed): its end.
    pub async fn failed(&mut self) -> Option<ServerEnd> {
        self.tasks.join_next().await.and_then(Result::ok)
    }
}
