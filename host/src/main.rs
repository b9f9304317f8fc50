//! `scheduler`: the reference scheduler host. Loads scheduler-executor.wasm into wasmtime and
//! runs YAML scenarios through it, one isolated instance per user.

// The standard print macros panic when their stream is closed (`scheduler run ... | head -1`
// closes both): these shadow them and drop what cannot be shown, so a closed stdout or stderr
// never costs a run its output files.
macro_rules! println {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($t)*);
    }};
}
macro_rules! print {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let mut out = std::io::stdout();
        let _ = write!(out, $($t)*);
        let _ = out.flush();
    }};
}
macro_rules! eprintln {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($t)*);
    }};
}
macro_rules! eprint {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = write!(std::io::stderr(), $($t)*);
    }};
}

// The rooms, by concern: `cli` (this file and the demo target), `format` (the scenario file),
// `engine` (load models, users, workflows), `authority` (addresses: local, etcd), `results`
// (recording, verdicts, reports, outputs), `runtime` (wasmtime, the arena, the policy).
mod authority;
mod cli;
mod engine;
mod format;
mod results;
mod runtime;

use cli::target;
use engine as run;
use format::{scenario, schema};
use results::{html, merge as results_file, output, report};

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use run::RunOptions;

/// A run stopped by Ctrl-C (128 + SIGINT, as shells report it; SIGTERM gives 143, SIGHUP
/// 129).
const EXIT_INTERRUPTED: u8 = 130;
/// A bad scenario, or bad usage.
const EXIT_USAGE: u8 = 2;
/// Users could not run (instantiation, no address) or their task failed.
const EXIT_USERS_FAILED: u8 = 97;
/// The run tested nothing: no request succeeded.
const EXIT_NOTHING_TESTED: u8 = 98;
/// A threshold was crossed (k6's code).
const EXIT_THRESHOLD: u8 = 99;

/// The run's exit code, the first that applies: interrupted 130, the run itself failed 1, a
/// threshold crossed 99, nothing succeeded 98, users failed 97, else 0.
fn exit_code(r: &report::Report) -> u8 {
    if r.interrupted {
        // 128 + the signal, as shells report it: 130 SIGINT, 143 SIGTERM, 129 SIGHUP.
        r.signal.map_or(EXIT_INTERRUPTED, |n| 128 + n)
    } else if !r.run_errors.is_empty() {
        1
    } else if r.aborted_by.is_some() || r.thresholds.iter().any(|t| !t.ok) {
        EXIT_THRESHOLD
    } else if r.totals.ok == 0 {
        EXIT_NOTHING_TESTED
    } else if !r.user_errors.is_empty() {
        EXIT_USERS_FAILED
    } else {
        0
    }
}

const DEMO: &str = include_str!("../scenarios/demo.yaml");

const EXIT_CODES: &str = "Exit codes (the first that applies): 130 interrupted by Ctrl-C (143 SIGTERM, 129 SIGHUP); 1 the \
run itself failed (the pool state could not be written), or exec's request failed; 2 a bad \
scenario or bad usage; 99 a threshold was crossed; 98 nothing was tested (no request \
succeeded); 97 users could not run or their task failed; 0 otherwise.";

/// Runs YAML scenarios through scheduler-executor.wasm: many isolated users, each sending from
/// its own source address taken from a pool.
#[derive(Parser)]
#[command(name = "scheduler", version, after_help = EXIT_CODES)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the bundled scenario against a target started on 127.0.0.1, with source
    /// addresses from a pool in 127.0.0.0/8.
    Demo {
        /// A few users and iterations (seconds instead of a minute).
        #[arg(long)]
        short: bool,
        #[command(flatten)]
        out: RunArgs,
    },
    /// Run a scenario file.
    Run {
        scenario: PathBuf,
        /// Run the I-th of N shares of the scenario (k6's execution segments): users striped
        /// by global id, rates and limits divided, each pool cut into N slices. The N result
        /// files merge into the whole run (`scheduler merge`).
        #[arg(long, value_name = "I/N", value_parser = parse_segment)]
        segment: Option<(u32, u32)>,
        /// Share the scenario's pools with every process of the run through etcd (v3, its
        /// JSON gateway, e.g. http://127.0.0.1:2379): blocks of addresses are claimed under
        /// this process's lease. With --segment, pools are not cut: etcd shares them.
        #[arg(long, value_name = "URL")]
        etcd: Option<String>,
        /// The etcd lease's time to live: a process killed without a goodbye gives its
        /// blocks back this long after (1s, 10s).
        #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_cli_duration)]
        lease_ttl: Duration,
        #[command(flatten)]
        out: RunArgs,
    },
    /// Check a scenario file without running it.
    Validate {
        scenario: PathBuf,
        /// Make every warning a problem (exit 2): fields the format does not know, names
        /// nothing declares, unused resources, a trigger never taken. By default they are
        /// warnings, as the original scheduler is lenient with its own files.
        #[arg(long)]
        strict: bool,
    },
    /// Send one request through the executor, as curl does.
    Exec(ExecArgs),
    /// Print the scenario format's JSON Schema (for editors: `# yaml-language-server:
    /// $schema=...`); host/scenario.schema.json is a copy.
    Schema,
    /// Merge the result files of several processes (`run --result`) into one exact report,
    /// its thresholds judged on the sum; exit codes as `run`.
    Merge {
        #[arg(required = true, value_name = "RESULT")]
        files: Vec<PathBuf>,
        /// Write the merged report as JSON.
        #[arg(long, value_name = "FILE")]
        json: Option<PathBuf>,
        /// Write the merged Prometheus metrics.
        #[arg(long, value_name = "FILE")]
        metrics: Option<PathBuf>,
        /// Write the merged HTML report.
        #[arg(long, value_name = "FILE.html")]
        report: Option<PathBuf>,
    },
}

#[derive(Args)]
struct RunArgs {
    /// Write the report as JSON.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Write Prometheus metrics (text exposition format).
    #[arg(long, value_name = "FILE")]
    metrics: Option<PathBuf>,
    /// Keep the pools' state here across runs (one process at a time).
    #[arg(long, value_name = "DIR")]
    state_dir: Option<PathBuf>,
    /// Write a result file (counters and histograms) that `scheduler merge` adds up exactly.
    #[arg(long, value_name = "FILE")]
    result: Option<PathBuf>,
    /// Serve Prometheus metrics live during the run (e.g. 127.0.0.1:9464).
    #[arg(long, value_name = "ADDR")]
    metrics_listen: Option<std::net::SocketAddr>,
    /// Write a self-contained HTML report with charts (no network fetches).
    #[arg(long, value_name = "FILE.html")]
    report: Option<PathBuf>,
    /// Stream the run as it goes: json=FILE (JSON lines: one a second, and each error) or
    /// csv=FILE (one row a second). Repeatable.
    #[arg(long = "out", value_name = "json=FILE|csv=FILE")]
    out: Vec<run::Out>,
}

#[derive(Args)]
struct ExecArgs {
    /// GET, POST, PUT, DELETE, PATCH, HEAD or OPTIONS (any case); with -X, the URL alone.
    #[arg(value_name = "METHOD|URL")]
    first: String,
    /// The URL, when the method comes first.
    #[arg(value_name = "URL")]
    url: Option<String>,
    /// The method (curl's -X); GET, or POST when a body is given.
    #[arg(short = 'X', long = "request", value_name = "METHOD")]
    method: Option<String>,
    /// A request header, `Name: value` (repeatable).
    #[arg(short = 'H', long = "header", value_name = "NAME: VALUE")]
    headers: Vec<String>,
    /// The body as text; `@FILE` reads it from a file (UTF-8).
    #[arg(
        short = 'd',
        long = "data",
        visible_alias = "body",
        value_name = "DATA"
    )]
    data: Option<String>,
    /// The body as bytes, exactly; `@FILE` reads it from a file.
    #[arg(long = "data-binary", value_name = "DATA", conflicts_with = "data")]
    data_binary: Option<String>,
    /// Send from this local address.
    #[arg(long, value_name = "IP")]
    bind_ip: Option<String>,
    /// Write the body, byte for byte, to FILE instead of standard output.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    output: Option<PathBuf>,
    /// The whole request's deadline (1.5, 2s, 500ms, 1m30s).
    #[arg(short = 'm', long, value_name = "DURATION", value_parser = parse_cli_duration)]
    max_time: Option<Duration>,
    /// The connection's deadline.
    #[arg(long, value_name = "DURATION", value_parser = parse_cli_duration)]
    connect_timeout: Option<Duration>,
    /// Retry a failed request up to N times (idempotent methods; connect failures and 5xx).
    #[arg(long, value_name = "N")]
    retry: Option<u32>,
    /// Ask for a gzip or deflate body and print it decoded (curl's --compressed).
    #[arg(long)]
    compressed: bool,
    /// Print the outcome as JSON (text bodies as text, others base64 with `body_base64: true`).
    #[arg(long)]
    json: bool,
    /// Trust the CA certificates in this PEM file too (repeatable).
    #[arg(long, value_name = "FILE")]
    cacert: Vec<PathBuf>,
    /// Do not verify the server's certificate (https).
    #[arg(short = 'k', long)]
    insecure: bool,
    /// Client certificate (PEM chain) for mutual TLS; with --key.
    #[arg(short = 'E', long = "cert", value_name = "FILE", requires = "key")]
    cert: Option<PathBuf>,
    /// The client certificate's private key (PEM).
    #[arg(long, value_name = "FILE", requires = "cert")]
    key: Option<PathBuf>,
    /// TLS 1.2 at least (curl's --tlsv1.2; the default).
    #[arg(long = "tlsv1.2")]
    tls12: bool,
    /// TLS 1.3 at least.
    #[arg(long = "tlsv1.3")]
    tls13: bool,
    /// TLS version at most: 1.2 or 1.3.
    #[arg(long, value_name = "VERSION", value_parser = parse_tls_version)]
    tls_max: Option<compose::tls::TlsVersion>,
}

fn parse_tls_version(s: &str) -> Result<compose::tls::TlsVersion, String> {
    compose::tls::TlsVersion::parse(s).ok_or_else(|| format!("{s}: expected 1.2 or 1.3"))
}

/// `I/N` with 0 <= I < N.
fn parse_segment(s: &str) -> Result<(u32, u32), String> {
    let (i, n) = s.split_once('/').ok_or("expected I/N, e.g. 0/3")?;
    let (i, n): (u32, u32) = (
        i.trim().parse().map_err(|_| "I is not a number")?,
        n.trim().parse().map_err(|_| "N is not a number")?,
    );
    if n == 0 || i >= n {
        return Err(format!("{s}: expected 0 <= I < N"));
    }
    Ok((i, n))
}

/// curl's plain seconds (`1.5`), or a humantime duration (`2s`, `1m30s`).
fn parse_cli_duration(s: &str) -> Result<Duration, String> {
    scenario::parse_duration(s)
        .filter(|d| !d.is_zero())
        .ok_or_else(|| format!("{s:?} is not a duration (1.5, 2s, 500ms, 1m30s)"))
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return match e.kind() {
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => {
                    ExitCode::SUCCESS
                }
                _ => ExitCode::from(EXIT_USAGE),
            };
        }
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
    match cli.command {
        Command::Schema => {
            print!("{}", schema::json());
            ExitCode::SUCCESS
        }
        Command::Validate {
            scenario: path,
            strict,
        } => match load_checked(&path, strict) {
            Ok(s) => {
                println!(
                    "{}: ok ({} pools, {} actions, {} nodes, {} users)",
                    path.display(),
                    s.pools.len(),
                    s.actions.len(),
                    s.nodes.len(),
                    s.total_users()
                );
                ExitCode::SUCCESS
            }
            Err(code) => code,
        },
        Command::Run {
            scenario: path,
            segment,
            etcd,
            lease_ttl,
            out,
        } => {
            let mut s = match load(&path) {
                Ok(s) => s,
                Err(code) => return code,
            };
            if let Err(code) = check_outputs(&out) {
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
                etcd: etcd.map(|url| authority::EtcdOptions { url, lease_ttl }),
                state_dir: out.state_dir.clone(),
                progress: true,
                drain: None,
                segment,
                out: out.out.clone(),
                metrics_listen: out.metrics_listen,
            };
            rt.block_on(finish(run::run(s, opts), &out, None))
        }
        Command::Demo { short, out } => {
            if let Err(code) = check_outputs(&out) {
                return code;
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
                r.properties
                    .insert("tls_port".into(), target.tls_addr.port().to_string());
            }
            // The demo trusts its target's CA (a file for the run, as a scenario names one).
            let ca = match tempfile::Builder::new()
                .suffix(".pem")
                .tempfile()
                .and_then(|mut f| {
                    use std::io::Write;
                    f.write_all(target.ca_pem.as_bytes())?;
                    Ok(f)
                }) {
                Ok(f) => f,
                Err(e) => {
                    eprintln!("scheduler: writing the demo CA: {e}");
                    return ExitCode::FAILURE;
                }
            };
            s.tls.settings.ca_files = vec![ca.path().to_path_buf()];
            if short {
                s.phases[0].users = 8;
                s.phases[1].users = 4;
                s.phases[1].at = Duration::from_millis(300);
                s.lifetime.iterations = 2;
                s.lifetime.think_time = Duration::from_millis(50);
            }
            println!(
                "demo target listening on {} (http) and {} (https)",
                target.addr, target.tls_addr
            );
            let opts = RunOptions {
                state_dir: out.state_dir.clone(),
                progress: true,
                drain: None,
                segment: None,
                out: out.out.clone(),
                metrics_listen: out.metrics_listen,
                etcd: None,
            };
            rt.block_on(finish(run::run(s, opts), &out, Some(&target)))
        }
        Command::Exec(args) => rt.block_on(exec(args)),
        Command::Merge {
            files,
            json,
            metrics,
            report: html_out,
        } => {
            let mut loaded = Vec::new();
            for f in &files {
                let shown = f.display().to_string();
                match std::fs::read_to_string(f)
                    .map_err(|e| e.to_string())
                    .and_then(|t| serde_json::from_str(&t).map_err(|e| e.to_string()))
                {
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
                report: html_out,
                metrics_listen: None,
            };
            if let Err(code) = check_outputs(&out) {
                return code;
            }
            rt.block_on(finish(async { results_file::merge(&loaded) }, &out, None))
        }
    }
}

fn usage(msg: &str) -> ExitCode {
    eprintln!("scheduler: {msg} (see scheduler --help)");
    ExitCode::from(EXIT_USAGE)
}

/// Load and check a scenario, printing every problem (and every warning).
fn load(path: &std::path::Path) -> Result<scenario::Scenario, ExitCode> {
    load_checked(path, false)
}

/// `load`; with `strict`, unknown fields are problems.
fn load_checked(path: &std::path::Path, strict: bool) -> Result<scenario::Scenario, ExitCode> {
    let shown = path.display().to_string();
    let path = shown.as_str();
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
    let dir = std::path::Path::new(path)
        .parent()
        .unwrap_or(std::path::Path::new("."))
        .to_path_buf();
    let (mut parsed, warnings) = scenario::parse_checked(&text, strict).map_err(|problems| {
        eprintln!("{path}: {} problem(s)", problems.len());
        for p in &problems {
            eprintln!("  {p}");
        }
        ExitCode::from(2)
    })?;
    for w in &warnings {
        eprintln!("{path}: warning: {w}");
    }
    // File names in `tls:` are the scenario file's; the files must load as run loads them.
    let base = if dir.as_os_str().is_empty() {
        std::path::PathBuf::from(".")
    } else {
        dir
    };
    parsed.tls.relative_to(&base);
    if let Err(e) = runtime::Tls::new(&parsed.tls.settings, &parsed.tls.tenants) {
        eprintln!("{path}: 1 problem(s)\n  tls: {e}");
        return Err(ExitCode::from(2));
    }
    Ok(parsed)
}

async fn finish(
    fut: impl std::future::Future<Output = Result<report::Report, String>>,
    flags: &RunArgs,
    target: Option<&target::Target>,
) -> ExitCode {
    let mut report = match fut.await {
        Ok(r) => r,
        Err(e) => {
            eprintln!("scheduler: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Some(t) = target {
        report.target_counts = Some(t.counts());
    }
    // The files first: a closed stdout must not cost them, nor a slow terminal delay them.
    let mut code = ExitCode::from(exit_code(&report));
    let files: [(&Option<PathBuf>, &dyn Fn() -> String); 4] = [
        (&flags.json, &|| {
            serde_json::to_string_pretty(&report.json()).unwrap_or_default()
        }),
        (&flags.report, &|| html::page(&report)),
        (&flags.result, &|| {
            serde_json::to_string(&results_file::to_json(&report)).unwrap_or_default()
        }),
        (&flags.metrics, &|| report.metrics()),
    ];
    for (path, text) in files {
        if let Some(p) = path
            && let Err(e) = output::write_file(p, text().as_bytes())
        {
            eprintln!("scheduler: writing {}: {e}", p.display());
            code = ExitCode::FAILURE;
        }
    }
    print!("{}", report.text());
    code
}

/// Every output path of a run, checked before it sends anything: a file that cannot be
/// written is found now, not after the run.
fn check_outputs(flags: &RunArgs) -> Result<(), ExitCode> {
    let mut paths: Vec<(&str, &std::path::Path)> = Vec::new();
    for (flag, p) in [
        ("--json", &flags.json),
        ("--report", &flags.report),
        ("--result", &flags.result),
        ("--metrics", &flags.metrics),
    ] {
        if let Some(p) = p {
            paths.push((flag, p));
        }
    }
    for o in &flags.out {
        paths.push(("--out", o.path()));
    }
    for (flag, p) in paths {
        if let Err(e) = output::check_writable(flag, p) {
            eprintln!("scheduler: {e}");
            return Err(ExitCode::from(EXIT_USAGE));
        }
    }
    Ok(())
}

fn is_method(s: &str) -> bool {
    ["get", "post", "put", "delete", "patch", "head", "options"]
        .contains(&s.to_ascii_lowercase().as_str())
}

/// A body argument: the text itself, or `@FILE`'s bytes.
fn body_arg(arg: &str) -> Result<Vec<u8>, String> {
    match arg.strip_prefix('@') {
        Some(path) => std::fs::read(path).map_err(|e| format!("reading {path}: {e}")),
        None => Ok(arg.as_bytes().to_vec()),
    }
}

async fn exec(args: ExecArgs) -> ExitCode {
    use base64::Engine as _;
    use runtime::exec as x;
    let (method, url) = match (&args.url, &args.method) {
        (Some(url), None) => (args.first.clone(), url.clone()),
        (None, Some(m)) => (m.clone(), args.first.clone()),
        (None, None) if is_method(&args.first) => {
            return usage("exec takes METHOD URL (or a URL alone, or -X METHOD URL)");
        }
        (None, None) => {
            let m = if args.data.is_some() || args.data_binary.is_some() {
                "post"
            } else {
                "get"
            };
            (m.to_string(), args.first.clone())
        }
        (Some(_), Some(_)) => return usage("give the method once: METHOD URL, or -X METHOD URL"),
    };
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
    for h in &args.headers {
        let Some((k, v)) = h.split_once(':') else {
            return usage(&format!("--header wants \"Name: value\", got {h:?}"));
        };
        headers.insert(k.trim().to_string(), v.trim().into());
    }
    let mut params = serde_json::json!({ "url": url, "headers": headers });
    if let Some(ip) = &args.bind_ip {
        params["bind_ip"] = ip.clone().into();
    }
    match (&args.data, &args.data_binary) {
        (Some(d), _) => match body_arg(d).map(String::from_utf8) {
            Ok(Ok(text)) => params["body"] = text.into(),
            Ok(Err(_)) => return usage("-d takes text; use --data-binary for bytes"),
            Err(e) => return usage(&e),
        },
        (None, Some(d)) => match body_arg(d) {
            Ok(bytes) => {
                params["body_base64"] = base64::engine::general_purpose::STANDARD
                    .encode(bytes)
                    .into()
            }
            Err(e) => return usage(&e),
        },
        (None, None) => {}
    }
    let mut timeouts = serde_json::Map::new();
    if let Some(d) = args.max_time {
        timeouts.insert("total_ms".into(), (d.as_millis().max(1) as u64).into());
    }
    if let Some(d) = args.connect_timeout {
        timeouts.insert("connect_ms".into(), (d.as_millis().max(1) as u64).into());
    }
    if !timeouts.is_empty() {
        params["timeouts"] = timeouts.into();
    }
    if let Some(n) = args.retry {
        params["retries"] = n.into();
    }
    if args.compressed {
        params["decompress"] = true.into();
    }
    let tls = compose::tls::TlsSettings {
        ca_files: args.cacert.clone(),
        insecure: args.insecure,
        client_identity: args.cert.clone().zip(args.key.clone()),
        min_version: if args.tls13 {
            Some(compose::tls::TlsVersion::Tls13)
        } else if args.tls12 {
            Some(compose::tls::TlsVersion::Tls12)
        } else {
            None
        },
        max_version: args.tls_max,
        server_name: None,
    };
    let runtime = match runtime::Tls::new(&tls, &[]).and_then(|t| runtime::Runtime::new(2, t)) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("scheduler: {e}");
            return ExitCode::FAILURE;
        }
    };
    // Only what the command names is reachable.
    let policy = Arc::new(runtime::Policy::default());
    run::allow_url(&policy, &url).await;
    if let Some(ip) = args.bind_ip.as_ref().and_then(|ip| ip.parse().ok()) {
        policy.allow_bind(ip);
    }
    let mut inst = match runtime.instantiate(policy, None).await {
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
            if let Some(path) = &args.output
                && let Err(e) = output::write_file(path, &o.body)
            {
                eprintln!("scheduler: writing {}: {e}", path.display());
                return ExitCode::FAILURE;
            }
            let pairs = |hs: &[x::Header]| {
                hs.iter()
                    .map(|h| (h.name.clone(), h.value.clone()))
                    .collect::<Vec<_>>()
            };
            if args.json {
                let mut v = serde_json::json!({
                    "status": o.status, "reason": o.reason,
                    "headers": pairs(&o.headers),
                    "trailers": pairs(&o.trailers),
                    "body_length": o.body_length,
                    "timings_us": { "dns": o.timings.dns_us, "connect": o.timings.connect_us, "tls": o.timings.tls_us, "first_byte": o.timings.first_byte_us, "total": o.timings.total_us },
                    "bytes_sent": o.bytes_sent, "bytes_received": o.bytes_received,
                    "source_address": o.source_address, "attempts": o.attempts, "redirects": o.redirects, "final_url": o.final_url,
                    "reused_connection": o.reused_connection,
                });
                if let Some(t) = inst.tls_last.lock().ok().and_then(|l| l.clone()) {
                    v["tls"] = serde_json::json!({
                        "version": t.version, "cipher_suite": t.cipher_suite, "resumed": t.resumed,
                        "verified": !args.insecure,
                    });
                }
                if args.output.is_none() {
                    match std::str::from_utf8(&o.body) {
                        Ok(text) => {
                            v["body"] = text.into();
                            v["body_base64"] = false.into();
                        }
                        Err(_) => {
                            v["body"] = base64::engine::general_purpose::STANDARD
                                .encode(&o.body)
                                .into();
                            v["body_base64"] = true.into();
                        }
                    }
                }
                println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
            } else {
                use std::io::Write;
                println!("{} {}", o.status, o.reason);
                for h in &o.headers {
                    println!("{}: {}", h.name, h.value);
                }
                println!();
                if args.output.is_none() {
                    // The body's bytes as they came, as curl prints them.
                    let mut out = std::io::stdout().lock();
                    let _ = out.write_all(&o.body).and_then(|()| out.flush());
                }
                for h in &o.trailers {
                    eprintln!("trailer {}: {}", h.name, h.value);
                }
                if let Some(t) = inst.tls_last.lock().ok().and_then(|l| l.clone()) {
                    eprintln!(
                        "-- {} {}{}{}",
                        t.version,
                        t.cipher_suite,
                        if t.resumed { ", resumed" } else { "" },
                        if args.insecure {
                            ", certificate NOT verified (--insecure)"
                        } else {
                            ""
                        }
                    );
                }
                eprintln!(
                    "-- from {} in {:.2} ms ({} attempt(s){})",
                    o.source_address.unwrap_or_default(),
                    o.timings.total_us as f64 / 1000.0,
                    o.attempts,
                    if o.reused_connection {
                        ", connection reused"
                    } else {
                        ""
                    }
                );
            }
            ExitCode::SUCCESS
        }
        Ok(Err(e)) => {
            if args.json {
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
