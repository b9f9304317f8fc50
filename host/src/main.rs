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

use std::process::ExitCode;

use clap::Parser;

use cli::args::{Cli, Command};
use cli::finish::EXIT_USAGE;
use format::schema;

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
    // What a run reads from the environment is checked as its flags are.
    if matches!(
        cli.command,
        Command::Run { .. } | Command::Demo { .. } | Command::Exec(_)
    ) && let Err(e) = engine::check_settings()
    {
        eprintln!("scheduler: {e}");
        return ExitCode::from(EXIT_USAGE);
    }
    match cli.command {
        Command::Schema => {
            print!("{}", schema::json());
            ExitCode::SUCCESS
        }
        Command::Validate {
            scenario: path,
            strict,
            env,
        } => {
            format::env::set_given(env);
            cli::commands::validate(&path, strict)
        }
        Command::Run {
            scenario: path,
            segment,
            etcd,
            run_id,
            workers,
            load,
            env,
            out,
        } => {
            format::env::set_given(env.clone());
            let fanned = workers.and_then(|w| {
                let shared = cli::workers::Shared {
                    etcd: etcd.clone(),
                    run_id: run_id.clone(),
                    env,
                    load: load.clone(),
                };
                cli::workers::run(&rt, &path, w, shared, &out)
            });
            fanned.unwrap_or_else(|| {
                cli::commands::run(&rt, &path, (segment, run_id, &load), &etcd, &out)
            })
        }
        Command::Demo { short, out } => cli::commands::demo(&rt, short, &out),
        Command::Serve { scenario, duration } => cli::serve::serve(&rt, &scenario, duration),
        Command::Exec(args) => rt.block_on(cli::exec::exec(*args)),
        Command::Merge {
            files,
            etcd,
            run_id,
            wait,
            json,
            metrics,
            report,
            partial,
        } => cli::commands::merge(
            &rt,
            cli::commands::MergeFrom {
                files,
                etcd,
                run_id,
                wait,
            },
            (json, metrics, report),
            partial,
        ),
    }
}
