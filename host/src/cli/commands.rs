//! The commands that run scenarios: `validate`, `run`, `demo` and `merge`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use super::args::{EtcdArgs, EtcdConn, LoadArgs, RunArgs};
use super::finish::{EXIT_USAGE, check_outputs, finish, load, load_checked, usage};
use super::target;
use crate::authority::published;
use crate::engine::{self, RunOptions};
use crate::format::scenario;
use crate::results::identity::{self, Identity};
use crate::results::merge as results_file;

const DEMO: &str = include_str!("../../scenarios/demo.yaml");

pub fn validate(path: &Path, strict: bool) -> ExitCode {
    match load_checked(path, strict) {
        Ok(s) => {
            println!(
                "{}: ok ({} pools, {} actions, {} nodes, {} users{})",
                path.display(),
                s.pools.len(),
                s.actions.len(),
                s.nodes.len(),
                s.total_users(),
                match s.servers.iter().map(|x| x.addresses.len()).sum::<usize>() {
                    0 => String::new(),
                    n => format!(", {n} server instances"),
                }
            );
            ExitCode::SUCCESS
        }
        Err(code) => code,
    }
}

pub fn run(
    rt: &tokio::runtime::Runtime,
    path: &Path,
    (segment, run_id, load_args): (Option<(u32, u32)>, Option<String>, &LoadArgs),
    etcd_args: &EtcdArgs,
    out: &RunArgs,
) -> ExitCode {
    let etcd = etcd_args.options();
    let mut s = match load(path) {
        Ok(s) => s,
        Err(code) => return code,
    };
    s.override_load(load_args.users, load_args.duration, load_args.iterations);
    let identity = Identity {
        // The scenario as run: its `{{env.NAME}}` given.
        scenario: std::fs::read_to_string(path)
            .ok()
            .and_then(|t| crate::format::env::substitute(&t).ok())
            .and_then(|t| identity::digest(&t)),
        segment,
        run_id: run_id.clone(),
    };
    if let Err(code) = check_outputs(out) {
        return code;
    }
    let pools = s.pools.clone();
    if let Some((i, n)) = segment
        && let Err(e) = s.segment(i, n)
    {
        return usage(&e);
    }
    // Pools in etcd are shared, not cut (but one bound to a segment is that one's).
    if etcd.is_some() {
        s.pools = pools;
        if let Some((i, _)) = segment {
            for p in &mut s.pools {
                if p.segment.is_some_and(|b| b != i) {
                    p.ranges.clear();
                }
            }
        }
    }
    let opts = RunOptions {
        etcd,
        segment,
        run_id: run_id.clone(),
        ..options(out)
    };
    let publish = etcd_args
        .publish_result
        .then(|| etcd_args.conn.client())
        .flatten();
    let run = async {
        let mut r = engine::run(s, opts).await?;
        r.identity = identity;
        if let (Some(client), Some(id)) = (publish, &run_id) {
            // The result goes to etcd for `merge --etcd`; not there, the run lost it.
            let text = serde_json::to_string(&results_file::to_json(&r)).unwrap_or_default();
            let put = match client {
                Ok(etcd) => published::publish(&etcd, id, segment.unwrap_or((0, 1)), &text).await,
                Err(e) => Err(e),
            };
            if let Err(e) = put {
                r.run_errors
                    .push(format!("publishing the result to etcd: {e}"));
            }
        }
        Ok(r)
    };
    rt.block_on(finish(run, out, None))
}

/// What every run takes from its output flags.
fn options(out: &RunArgs) -> RunOptions {
    RunOptions {
        state_dir: out.state_dir.clone(),
        progress: true,
        drain: None,
        segment: None,
        out: out.out.clone(),
        metrics_listen: out.metrics_listen,
        dashboard: out.dashboard,
        etcd: None,
        run_id: None,
    }
}

pub fn demo(rt: &tokio::runtime::Runtime, short: bool, out: &RunArgs) -> ExitCode {
    if let Err(code) = check_outputs(out) {
        return code;
    }
    let target = match target::Target::start() {
        Ok(t) => t,
        Err(e) => {
            eprintln!("scheduler: starting the demo target: {e}");
            return ExitCode::FAILURE;
        }
    };
    let (s, _ca) = match demo_scenario(&target, short) {
        Ok(x) => x,
        Err(e) => {
            eprintln!("scheduler: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!(
        "demo HTTPS target listening on {} (the GETs go to the demo's server)",
        target.tls_addr
    );
    rt.block_on(finish(engine::run(s, options(out)), out, Some(&target)))
}

/// The bundled scenario pointed at the demo's target, trusting its CA (a file for the run,
/// kept as long as the returned handle).
fn demo_scenario(
    target: &target::Target,
    short: bool,
) -> Result<(scenario::Scenario, tempfile::NamedTempFile), String> {
    let mut s = scenario::parse(DEMO).map_err(|p| format!("the bundled demo is invalid: {p:?}"))?;
    for r in &mut s.resources {
        r.properties
            .insert("port".into(), target.addr.port().to_string());
        r.properties
            .insert("tls_port".into(), target.tls_addr.port().to_string());
    }
    // The GETs' server: on a port free on loopback now.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| format!("a port for the demo's server: {e}"))?
        .port();
    for sv in &mut s.servers {
        sv.config["port"] = port.into();
    }
    let ca = tempfile::Builder::new()
        .suffix(".pem")
        .tempfile()
        .and_then(|mut f| {
            use std::io::Write;
            f.write_all(target.ca_pem.as_bytes())?;
            Ok(f)
        })
        .map_err(|e| format!("writing the demo CA: {e}"))?;
    s.tls.settings.ca_files = vec![ca.path().to_path_buf()];
    if short {
        s.phases[0].users = 8;
        s.phases[1].users = 4;
        s.phases[1].at = Duration::from_millis(300);
        s.lifetime.iterations = 2;
        s.lifetime.think_time = scenario::Think::Fixed(Duration::from_millis(50));
    }
    Ok((s, ca))
}

/// Where `merge` reads the results: files, or a run's in etcd.
pub struct MergeFrom {
    pub files: Vec<PathBuf>,
    pub etcd: EtcdConn,
    pub run_id: Option<String>,
    pub wait: Duration,
}

/// The result texts to merge, with their names.
fn merge_inputs(
    rt: &tokio::runtime::Runtime,
    from: &MergeFrom,
) -> Result<Vec<(String, String)>, String> {
    let Some(client) = from.etcd.client() else {
        return from
            .files
            .iter()
            .map(|f| {
                let shown = f.display().to_string();
                std::fs::read_to_string(f)
                    .map(|t| (shown.clone(), t))
                    .map_err(|e| format!("{shown}: {e}"))
            })
            .collect();
    };
    let id = from
        .run_id
        .as_deref()
        .ok_or("--etcd needs --run-id: the run whose results to merge")?;
    if !from.files.is_empty() {
        return Err("give result files or --etcd, not both".into());
    }
    let etcd = client?;
    rt.block_on(published::collect(&etcd, id, from.wait))
}

pub fn merge(
    rt: &tokio::runtime::Runtime,
    from: MergeFrom,
    (json, metrics, report): (Option<PathBuf>, Option<PathBuf>, Option<PathBuf>),
    partial: bool,
) -> ExitCode {
    let texts = match merge_inputs(rt, &from) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("scheduler: {e}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let mut loaded = Vec::new();
    for (shown, text) in texts {
        match serde_json::from_str(&text) {
            Ok(v) => loaded.push((shown, v)),
            Err(e) => {
                eprintln!("scheduler: {shown}: {e}");
                return ExitCode::from(EXIT_USAGE);
            }
        }
    }
    let out = RunArgs {
        json,
        metrics,
        state_dir: None,
        result: None,
        out: Vec::new(),
        report,
        metrics_listen: None,
        dashboard: None,
    };
    if let Err(code) = check_outputs(&out) {
        return code;
    }
    match identity::check_set(&loaded, partial) {
        Ok(missing) if !missing.is_empty() => {
            let list: Vec<String> = missing.iter().map(u32::to_string).collect();
            eprintln!(
                "scheduler: merging without segment(s) {} (--partial)",
                list.join(", ")
            );
        }
        Ok(_) => {}
        Err(e) => {
            eprintln!("scheduler: {e}");
            return ExitCode::from(EXIT_USAGE);
        }
    }
    let code = rt.block_on(finish(async { results_file::merge(&loaded) }, &out, None));
    // A run's results in etcd go once the merge has written its outputs.
    if let (Some(Ok(etcd)), Some(id)) = (from.etcd.client(), &from.run_id)
        && code != ExitCode::FAILURE
        && let Err(e) = rt.block_on(published::remove(&etcd, id))
    {
        eprintln!("scheduler: removing run {id}'s results from etcd: {e}");
    }
    code
}
