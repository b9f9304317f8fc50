//! What a command ends with: its exit code, its outputs written whole, and the scenario
//! loaded with every problem printed.

use std::path::PathBuf;
use std::process::ExitCode;

use super::args::RunArgs;
use crate::format::scenario;
use crate::results::merge as results_file;
use crate::results::{html, output, report};
use crate::runtime;

/// A run stopped by Ctrl-C (128 + SIGINT, as shells report it; SIGTERM gives 143, SIGHUP
/// 129).
pub const EXIT_INTERRUPTED: u8 = 130;
/// A bad scenario, or bad usage.
pub const EXIT_USAGE: u8 = 2;
/// Users could not run (instantiation, no address) or their task failed.
pub const EXIT_USERS_FAILED: u8 = 97;
/// The run tested nothing: no request succeeded.
pub const EXIT_NOTHING_TESTED: u8 = 98;
/// A threshold was crossed (k6's code).
pub const EXIT_THRESHOLD: u8 = 99;

/// The run's exit code, the first that applies: interrupted 130, the run itself failed 1, a
/// threshold crossed 99 (for a segment, only one that aborted it: the merge judges the
/// others on the whole run), nothing succeeded 98, users failed 97, else 0.
pub fn exit_code(r: &report::Report) -> u8 {
    if r.interrupted {
        // 128 + the signal, as shells report it: 130 SIGINT, 143 SIGTERM, 129 SIGHUP.
        r.signal.map_or(EXIT_INTERRUPTED, |n| 128 + n)
    } else if !r.run_errors.is_empty() {
        1
    } else if r.empty_segment {
        // The merge of all segments judges the run.
        0
    } else if r.aborted_by.is_some() {
        EXIT_THRESHOLD
    } else if r.identity.segment.is_none_or(|(_, n)| n == 1) && r.thresholds.iter().any(|t| !t.ok) {
        // A segment's thresholds are its share's: the merge of all segments judges the run.
        EXIT_THRESHOLD
    } else if r.totals.ok == 0 {
        EXIT_NOTHING_TESTED
    } else if !r.user_errors.is_empty() {
        EXIT_USERS_FAILED
    } else {
        0
    }
}

pub fn usage(msg: &str) -> ExitCode {
    eprintln!("scheduler: {msg} (see scheduler --help)");
    ExitCode::from(EXIT_USAGE)
}

/// Load and check a scenario, printing every problem (and every warning).
pub fn load(path: &std::path::Path) -> Result<scenario::Scenario, ExitCode> {
    load_checked(path, false)
}

/// `load`; with `strict`, unknown fields are problems.
pub fn load_checked(path: &std::path::Path, strict: bool) -> Result<scenario::Scenario, ExitCode> {
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
    let text = crate::format::env::substitute(&text).map_err(|unset| {
        eprintln!(
            "{path}: {{{{env.NAME}}}} with no value and no default (give --env NAME=VALUE, set it, or write {{{{env.NAME:-default}}}}): {}",
            unset.join(", ")
        );
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
    let problems = parsed.load_data(&base);
    if !problems.is_empty() {
        eprintln!("{path}: {} problem(s)", problems.len());
        for p in &problems {
            eprintln!("  {p}");
        }
        return Err(ExitCode::from(2));
    }
    if let Err(e) = runtime::Tls::new(&parsed.tls.settings, &parsed.tls.tenants) {
        eprintln!("{path}: 1 problem(s)\n  tls: {e}");
        return Err(ExitCode::from(2));
    }
    Ok(parsed)
}

pub async fn finish(
    fut: impl std::future::Future<Output = Result<report::Report, String>>,
    flags: &RunArgs,
    target: Option<&crate::cli::target::Target>,
) -> ExitCode {
    let mut report = match fut.await {
        Ok(r) => r,
        Err(e) => {
            eprintln!("scheduler: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Some(t) = target {
        // Added to what the run's own servers saw (the demo's GETs go to one of them).
        let counts = report.target_counts.get_or_insert_with(Default::default);
        for (ip, n) in t.counts() {
            *counts.entry(ip).or_insert(0) += n;
        }
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
pub fn check_outputs(flags: &RunArgs) -> Result<(), ExitCode> {
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
