//! `ureq-guest URL N`: N sequential GETs with one ureq agent (std::net underneath), each body
//! read to the end; prints `N SECONDS`. Built for wasm32-wasip2 by the benchmark suite and
//! run in the same wasmtime as our components: the "wasm ureq" peer.
//!
//! Its connection pool is off: before reusing a connection ureq checks it with
//! `set_nonblocking` and `peek`, which std on wasm32-wasip2 does not support ("Not supported"
//! on the second request). So on this target ureq opens a connection per request.

use std::io::Read;
use std::process::ExitCode;
use std::time::Instant;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let (Some(url), Some(Ok(n))) = (args.get(1), args.get(2).map(|n| n.parse::<u64>())) else {
        eprintln!("usage: ureq-guest URL N");
        return ExitCode::from(2);
    };
    let agent = ureq::AgentBuilder::new().max_idle_connections(0).build();
    let mut body = Vec::new();
    let start = Instant::now();
    for i in 0..n {
        match agent.get(url).call() {
            Ok(r) if r.status() == 200 => {
                body.clear();
                if let Err(e) = r.into_reader().read_to_end(&mut body) {
                    eprintln!("request {i}: reading the body: {e}");
                    return ExitCode::FAILURE;
                }
            }
            Ok(r) => {
                eprintln!("request {i}: status {}", r.status());
                return ExitCode::FAILURE;
            }
            Err(e) => {
                eprintln!("request {i}: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    println!("{n} {}", start.elapsed().as_secs_f64());
    ExitCode::SUCCESS
}
