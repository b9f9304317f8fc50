//! The command line: commands and their flags (clap).

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

pub use super::exec::ExecArgs;
use crate::engine;
use crate::format::scenario;

const EXIT_CODES: &str = "Exit codes (the first that applies): 130 interrupted by Ctrl-C (143 SIGTERM, 129 SIGHUP); 1 the \
run itself failed (the pool state or an output could not be written); 2 a bad scenario or bad \
usage; 99 a threshold was crossed; 98 nothing was tested (no request succeeded); 97 users \
could not run or their task failed; 0 otherwise. exec exits with curl's codes (6 resolve, \
7 connect, 22 -f, 28 timeout, 35 TLS, 47 redirects, 52 empty reply, 56 receive, 58 client \
certificate, 60 certificate, 61 encoding, 77 CA file).";

/// Runs YAML scenarios through scheduler-executor.wasm: many isolated users, each sending from
/// its own source address taken from a pool.
#[derive(Parser)]
#[command(name = "scheduler", version, after_help = EXIT_CODES)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

// Parsed once per process: the size of its largest variant costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
pub enum Command {
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
        #[command(flatten)]
        etcd: EtcdArgs,
        /// An id for the run, recorded in its result file: `merge` refuses files of
        /// different runs (give every segment of one run the same id).
        #[arg(long, value_name = "ID")]
        run_id: Option<String>,
        /// Run the scenario in N local processes (segments 0/N..N-1/N, the pools cut among
        /// them or shared through --etcd) and write one merged report with one exit code;
        /// signals reach every worker. `auto`: as many as the users need for descriptors.
        #[arg(long, value_name = "N|auto", value_parser = crate::cli::workers::parse_workers, conflicts_with = "segment")]
        workers: Option<crate::cli::workers::Workers>,
        #[command(flatten)]
        load: LoadArgs,
        /// A value for `{{env.NAME}}` in the scenario (repeatable; over the process
        /// environment), as k6's -e.
        #[arg(short = 'e', long = "env", value_name = "NAME=VALUE", value_parser = crate::format::env::parse_pair)]
        env: Vec<(String, String)>,
        #[command(flatten)]
        out: RunArgs,
    },
    /// Run a scenario's `servers:` (HTTP servers, each instance on its own address) until
    /// Ctrl-C or SIGTERM; a file may hold servers alone.
    Serve {
        scenario: PathBuf,
        /// Stop after this long (e.g. 30s) instead of waiting for a signal.
        #[arg(long, value_name = "D", value_parser = parse_cli_duration)]
        duration: Option<std::time::Duration>,
    },
    /// Check a scenario file without running it.
    Validate {
        scenario: PathBuf,
        /// Make every warning a problem (exit 2): fields the format does not know, names
        /// nothing declares, unused resources, a trigger never taken. By default they are
        /// warnings, as the original scheduler is lenient with its own files.
        #[arg(long)]
        strict: bool,
        /// A value for `{{env.NAME}}` in the scenario (repeatable).
        #[arg(short = 'e', long = "env", value_name = "NAME=VALUE", value_parser = crate::format::env::parse_pair)]
        env: Vec<(String, String)>,
    },
    /// Send one request through the executor, as curl does.
    Exec(Box<ExecArgs>),
    /// Print the scenario format's JSON Schema (for editors: `# yaml-language-server:
    /// $schema=...`); host/scenario.schema.json is a copy.
    Schema,
    /// Merge the result files of several processes (`run --result`) into one exact report,
    /// its thresholds judged on the sum; exit codes as `run`.
    Merge {
        #[arg(required_unless_present = "etcd", value_name = "RESULT")]
        files: Vec<PathBuf>,
        /// Read the results from etcd (`run --publish-result`), waiting for every segment.
        #[command(flatten)]
        etcd: EtcdConn,
        /// The run whose results to read from etcd.
        #[arg(long, value_name = "ID", requires = "etcd")]
        run_id: Option<String>,
        /// How long to wait for every segment's result in etcd.
        #[arg(long, value_name = "DURATION", default_value = "10m", value_parser = parse_cli_duration, requires = "etcd")]
        wait: Duration,
        /// Write the merged report as JSON.
        #[arg(long, value_name = "FILE")]
        json: Option<PathBuf>,
        /// Write the merged Prometheus metrics.
        #[arg(long, value_name = "FILE")]
        metrics: Option<PathBuf>,
        /// Write the merged HTML report.
        #[arg(long, value_name = "FILE.html")]
        report: Option<PathBuf>,
        /// Merge the segments there are, saying which are missing (by default a missing
        /// segment is refused).
        #[arg(long)]
        partial: bool,
    },
}

/// k6's `--vus`, `--duration` and `--iterations`, over the file's load model.
#[derive(Args, Clone, Default)]
pub struct LoadArgs {
    /// N users from the start, in place of the file's phases, stages or arrival rate (the
    /// first phase's tenant and pool).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=10_000_000))]
    pub users: Option<u32>,
    /// The users loop for this long (1m, 30s).
    #[arg(long, value_name = "DURATION", value_parser = parse_cli_duration)]
    pub duration: Option<Duration>,
    /// N iterations in all, shared by the users (k6's shared-iterations).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub iterations: Option<u64>,
}

impl LoadArgs {
    /// The flags again, for a worker's command line.
    pub fn to_args(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(n) = self.users {
            out.push(format!("--users={n}"));
        }
        if let Some(d) = self.duration {
            out.push(format!("--duration={}s", d.as_secs_f64()));
        }
        if let Some(n) = self.iterations {
            out.push(format!("--iterations={n}"));
        }
        out
    }
}

/// Where etcd is and how to reach it.
#[derive(Args, Clone)]
pub struct EtcdConn {
    /// Share the scenario's pools with every process of the run through etcd (v3, its
    /// JSON gateway, e.g. http://127.0.0.1:2379 or https://...): blocks of addresses are
    /// claimed under this process's lease. With --segment, pools are not cut: etcd shares
    /// them.
    #[arg(long, value_name = "URL")]
    pub etcd: Option<String>,
    /// The CA certificates (PEM) that sign an `https://` etcd's certificate.
    #[arg(long = "etcd-cacert", value_name = "FILE", requires = "etcd")]
    pub etcd_cacert: Option<PathBuf>,
    /// This process's client certificate (PEM) for an etcd that asks for one (mTLS).
    #[arg(long = "etcd-cert", value_name = "FILE", requires_all = ["etcd", "etcd_key"])]
    pub etcd_cert: Option<PathBuf>,
    /// The client certificate's private key (PEM).
    #[arg(long = "etcd-key", value_name = "FILE", requires = "etcd_cert")]
    pub etcd_key: Option<PathBuf>,
}

impl EtcdConn {
    pub fn tls(&self) -> compose::tls::TlsSettings {
        compose::tls::TlsSettings {
            ca_files: self.etcd_cacert.iter().cloned().collect(),
            client_identity: self.etcd_cert.clone().zip(self.etcd_key.clone()),
            ..Default::default()
        }
    }

    /// A client of etcd, when `--etcd` is given.
    pub fn client(&self) -> Option<Result<crate::authority::etcd::Etcd, String>> {
        let url = self.etcd.as_deref()?;
        Some(crate::authority::etcd::Etcd::new(url, &self.tls()))
    }
}

/// `--etcd` and what goes with it for a run.
#[derive(Args, Clone)]
pub struct EtcdArgs {
    #[command(flatten)]
    pub conn: EtcdConn,
    /// The etcd lease's time to live: a process killed without a goodbye gives its
    /// blocks back this long after (1s, 10s).
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_cli_duration)]
    pub lease_ttl: Duration,
    /// How long to wait for etcd at the start (retried with backoff): segments may start
    /// before etcd is ready.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_cli_duration)]
    pub etcd_wait: Duration,
    /// Put this process's result in etcd under --run-id (in place of a shared volume), for
    /// `scheduler merge --etcd URL --run-id ID`.
    #[arg(long, requires_all = ["etcd", "run_id"])]
    pub publish_result: bool,
}

impl EtcdArgs {
    /// The authority's options, when `--etcd` is given.
    pub fn options(&self) -> Option<crate::authority::EtcdOptions> {
        let url = self.conn.etcd.clone()?;
        Some(crate::authority::EtcdOptions {
            url,
            lease_ttl: self.lease_ttl,
            wait: self.etcd_wait,
            tls: self.conn.tls(),
        })
    }
}

#[derive(Args)]
pub struct RunArgs {
    /// Write the report as JSON.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Write Prometheus metrics (text exposition format).
    #[arg(long, value_name = "FILE")]
    pub metrics: Option<PathBuf>,
    /// Keep the pools' state here across runs (one process at a time).
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// Write a result file (counters and histograms) that `scheduler merge` adds up exactly.
    #[arg(long, value_name = "FILE")]
    pub result: Option<PathBuf>,
    /// Serve Prometheus metrics live during the run (e.g. 127.0.0.1:9464).
    #[arg(long, value_name = "ADDR")]
    pub metrics_listen: Option<std::net::SocketAddr>,
    /// Serve a live dashboard during the run (k6's is at 127.0.0.1:5665): request rate,
    /// errors, latency percentiles, users, per tenant and per source, each second.
    #[arg(long, value_name = "ADDR")]
    pub dashboard: Option<std::net::SocketAddr>,
    /// Write a self-contained HTML report with charts (no network fetches).
    #[arg(long, value_name = "FILE.html")]
    pub report: Option<PathBuf>,
    /// Stream the run as it goes: json=FILE (JSON lines: one a second, and each error) or
    /// csv=FILE (one row a second). Repeatable.
    #[arg(long = "out", value_name = "json=FILE|csv=FILE")]
    pub out: Vec<engine::Out>,
}

pub fn parse_tls_version(s: &str) -> Result<compose::tls::TlsVersion, String> {
    compose::tls::TlsVersion::parse(s).ok_or_else(|| format!("{s}: expected 1.2 or 1.3"))
}

/// `I/N` with 0 <= I < N.
pub fn parse_segment(s: &str) -> Result<(u32, u32), String> {
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
pub fn parse_cli_duration(s: &str) -> Result<Duration, String> {
    scenario::parse_duration(s)
        .filter(|d| !d.is_zero())
        .ok_or_else(|| format!("{s:?} is not a duration (1.5, 2s, 500ms, 1m30s)"))
}
