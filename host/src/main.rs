//! `scheduler`: the reference scheduler host. Loads scheduler-executor.wasm into wasmtime and
//! runs YAML scenarios through it, one isolated instance per user.

mod authority;
#[cfg(test)]
mod fuzz;
mod report;
mod run;
mod runtime;
mod scenario;
mod target;
mod template;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use run::RunOptions;

const USAGE: &str = "usage:
  scheduler demo [--short] [--json REPORT.json] [--metrics FILE.prom]
      run the bundled scenario against a target started on 127.0.0.1, with source
      addresses from a pool in 127.0.0.0/8
  scheduler run SCENARIO.yaml [--json REPORT.json] [--metrics FILE.prom] [--state-dir DIR]
  scheduler validate SCENARIO.yaml
  scheduler exec METHOD URL [--bind-ip IP] [--header K:V]... [--body S] [--json]";

/// A run stopped by Ctrl-C (128 + SIGINT, as shells report it).
const EXIT_INTERRUPTED: u8 = 130;

const DEMO: &str = include_str!("../scenarios/demo.yaml");

fn usage(msg: &str) -> ExitCode {
    eprintln!("scheduler: {msg}\n{USAGE}");
    ExitCode::from(2)
}

#[derive(Default)]
struct Flags {
    positional: Vec<String>,
    json: Option<PathBuf>,
    metrics: Option<PathBuf>,
    state_dir: Option<PathBuf>,
    bind_ip: Option<String>,
    headers: Vec<String>,
    body: Option<String>,
    json_flag: bool,
    short: bool,
}

fn parse_flags(args: &[String]) -> Result<Flags, String> {
    let mut f = Flags::default();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = |name: &str| {
            it.next()
                .cloned()
                .ok_or_else(|| format!("{name} needs a value"))
        };
        match a.as_str() {
            "--json" if f.positional.first().is_some_and(|c| c == "exec") => f.json_flag = true,
            "--json" => f.json = Some(value("--json")?.into()),
            "--metrics" => f.metrics = Some(value("--metrics")?.into()),
            "--state-dir" => f.state_dir = Some(value("--state-dir")?.into()),
            "--bind-ip" => f.bind_ip = Some(value("--bind-ip")?),
            "--header" | "-H" => f.headers.push(value("--header")?),
            "--body" | "-d" => f.body = Some(value("--body")?),
            "--short" => f.short = true,
            "-h" | "--help" => return Err(String::new()),
            s if s.starts_with('-') => return Err(format!("unknown option {s}")),
            s => f.positional.push(s.to_string()),
        }
    }
    Ok(f)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let flags = match parse_flags(&args) {
        Ok(f) => f,
        Err(e) if e.is_empty() => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => return usage(&e),
    };
    let Some(cmd) = flags.positional.first().cloned() else {
        return usage("missing command");
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("scheduler: starting the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match cmd.as_str() {
        "validate" => {
            let [_, path] = flags.positional.as_slice() else {
                return usage("validate takes one scenario file");
            };
            match load(path) {
                Ok(s) => {
                    println!(
                        "{path}: ok ({} pools, {} actions, {} nodes, {} users)",
                        s.pools.len(),
                        s.actions.len(),
                        s.nodes.len(),
                        s.total_users()
                    );
                    ExitCode::SUCCESS
                }
                Err(code) => code,
            }
        }
        "run" => {
            let [_, path] = flags.positional.as_slice() else {
                return usage("run takes one scenario file");
            };
            let Ok(s) = load(path) else {
                return ExitCode::from(2);
            };
            let opts = RunOptions {
                state_dir: flags.state_dir.clone(),
                progress: true,
                drain: None,
            };
            rt.block_on(finish(run::run(s, opts), &flags, None))
        }
        "demo" => {
            if flags.positional.len() != 1 {
                return usage("demo takes no arguments");
            }
            let target = match target::Target::start() {
                Ok(t) => t,
                Err(e) => {
                    eprintln!("scheduler: starting the demo target: {e}");
                    return ExitCode::FAILURE;
                }
            };
            let mut s = match scenario::parse(DEMO) {
                Ok(s) => s,
                Err(p) => {
                    eprintln!("scheduler: the bundled demo is invalid: {p:?}");
                    return ExitCode::FAILURE;
                }
            };
            for r in &mut s.resources {
                r.properties
                    .insert("port".into(), target.addr.port().to_string());
            }
            if flags.short {
                s.phases[0].users = 8;
                s.phases[1].users = 4;
                s.phases[1].at = Duration::from_millis(300);
                s.lifetime.iterations = 2;
                s.lifetime.think_time = Duration::from_millis(50);
            }
            println!("demo target listening on {}", target.addr);
            let opts = RunOptions {
                state_dir: flags.state_dir.clone(),
                progress: true,
                drain: None,
            };
            rt.block_on(finish(run::run(s, opts), &flags, Some(&target)))
        }
        "exec" => {
            let [_, m, url] = flags.positional.as_slice() else {
                return usage("exec takes METHOD URL");
            };
            rt.block_on(exec(m, url, &flags))
        }
        other => usage(&format!("unknown command {other:?}")),
    }
}

/// Load and check a scenario, printing every problem.
fn load(path: &str) -> Result<scenario::Scenario, ExitCode> {
    let too_big = std::fs::metadata(path).is_ok_and(|m| m.len() > scenario::MAX_INPUT as u64);
    if too_big {
        eprintln!(
            "scheduler: {path}: larger than {} bytes; not a scenario",
            scenario::MAX_INPUT
        );
        return Err(ExitCode::from(2));
    }
    let text = std::fs::read_to_string(path).map_err(|e| {
        eprintln!("scheduler: {path}: {e}");
        ExitCode::from(2)
    })?;
    scenario::parse(&text).map_err(|problems| {
        eprintln!("{path}: {} problem(s)", problems.len());
        for p in &problems {
            eprintln!("  {p}");
        }
        ExitCode::from(2)
    })
}

async fn finish(
    fut: impl std::future::Future<Output = Result<(report::Report, Vec<report::Sample>), String>>,
    flags: &Flags,
    target: Option<&target::Target>,
) -> ExitCode {
    let (mut report, samples) = match fut.await {
        Ok(r) => r,
        Err(e) => {
            eprintln!("scheduler: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Some(t) = target {
        report.target_counts = Some(t.counts());
    }
    print!("{}", report.text());
    let mut code = if report.interrupted {
        ExitCode::from(EXIT_INTERRUPTED)
    } else if !report.run_errors.is_empty() || !report.user_errors.is_empty() {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    };
    if let Some(p) = &flags.json {
        let text = serde_json::to_string_pretty(&report.json()).unwrap_or_default();
        if let Err(e) = std::fs::write(p, text) {
            eprintln!("scheduler: writing {}: {e}", p.display());
            code = ExitCode::FAILURE;
        }
    }
    if let Some(p) = &flags.metrics
        && let Err(e) = std::fs::write(p, report.metrics(&samples))
    {
        eprintln!("scheduler: writing {}: {e}", p.display());
        code = ExitCode::FAILURE;
    }
    code
}

async fn exec(method: &str, url: &str, flags: &Flags) -> ExitCode {
    use runtime::exec as x;
    let call = match method.to_ascii_lowercase().as_str() {
        "get" => x::HttpMethod::Get,
        "post" => x::HttpMethod::Post,
        "put" => x::HttpMethod::Put,
        "delete" => x::HttpMethod::Delete,
        "patch" => x::HttpMethod::Patch,
        "head" => x::HttpMethod::Head,
        "options" => x::HttpMethod::Options,
        other => return usage(&format!("unknown method {other:?}")),
    };
    let mut headers = serde_json::Map::new();
    for h in &flags.headers {
        let Some((k, v)) = h.split_once(':') else {
            return usage(&format!("--header wants K:V, got {h:?}"));
        };
        headers.insert(k.trim().to_string(), v.trim().into());
    }
    let mut params = serde_json::json!({ "url": url, "headers": headers });
    if let Some(ip) = &flags.bind_ip {
        params["bind_ip"] = ip.clone().into();
    }
    if let Some(b) = &flags.body {
        params["body"] = b.clone().into();
    }
    let runtime = match runtime::Runtime::new(2) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("scheduler: {e}");
            return ExitCode::FAILURE;
        }
    };
    // Only what the command names is reachable.
    let policy = Arc::new(runtime::Policy::default());
    for t in run::target_of_url(url).await.unwrap_or_default() {
        policy.allow_target(t);
    }
    if let Some(ip) = flags.bind_ip.as_ref().and_then(|ip| ip.parse().ok()) {
        policy.allow_bind(ip);
    }
    let mut inst = match runtime.instantiate(policy).await {
        Ok(i) => i,
        Err(e) => {
            eprintln!("scheduler: {e}");
            return ExitCode::FAILURE;
        }
    };
    let action = x::Action {
        id: "exec".into(),
        call,
        with_params: params.to_string(),
        exports: vec![],
    };
    match inst.execute(&action).await {
        Ok(Ok(o)) => {
            if flags.json_flag {
                let v = serde_json::json!({
                    "status": o.status, "reason": o.reason,
                    "headers": o.headers.iter().map(|h| (h.name.clone(), h.value.clone())).collect::<Vec<_>>(),
                    "body": String::from_utf8_lossy(&o.body),
                    "timings_us": { "dns": o.timings.dns_us, "connect": o.timings.connect_us, "first_byte": o.timings.first_byte_us, "total": o.timings.total_us },
                    "bytes_sent": o.bytes_sent, "bytes_received": o.bytes_received,
                    "source_address": o.source_address, "attempts": o.attempts, "redirects": o.redirects, "final_url": o.final_url,
                });
                println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
            } else {
                println!("{} {}", o.status, o.reason);
                for h in &o.headers {
                    println!("{}: {}", h.name, h.value);
                }
                println!();
                println!("{}", String::from_utf8_lossy(&o.body));
                eprintln!(
                    "-- from {} in {:.2} ms ({} attempt(s))",
                    o.source_address.unwrap_or_default(),
                    o.timings.total_us as f64 / 1000.0,
                    o.attempts
                );
            }
            ExitCode::SUCCESS
        }
        Ok(Err(e)) => {
            if flags.json_flag {
                println!(
                    "{}",
                    serde_json::json!({ "error": runtime::error_kind(&e), "message": runtime::error_text(&e) })
                );
            } else {
                eprintln!(
                    "scheduler: {}: {}",
                    runtime::error_kind(&e),
                    runtime::error_text(&e)
                );
            }
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("scheduler: {e}");
            ExitCode::FAILURE
        }
    }
}
