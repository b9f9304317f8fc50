//! `wasi-http-guest URL N`: N sequential GETs through `wasi:http/outgoing-handler`, each body
//! read to the end; prints `N SECONDS`. Built for wasm32-wasip2 by the benchmark suite and run
//! on wasmtime's wasi-http host: the "wasi:http client" peer. It uses the raw bindings (no
//! client library on top), so it is the cheapest a wasi:http client can be.
//!
//! On other targets it only reports that it needs wasm32-wasip2.

use std::process::ExitCode;

#[cfg(target_os = "wasi")]
fn main() -> ExitCode {
    use std::time::Instant;
    let args: Vec<String> = std::env::args().collect();
    let (Some(url), Some(Ok(n))) = (args.get(1), args.get(2).map(|n| n.parse::<u64>())) else {
        eprintln!("usage: wasi-http-guest http://HOST:PORT/PATH N");
        return ExitCode::from(2);
    };
    let Some((authority, path)) = url
        .strip_prefix("http://")
        .map(|rest| rest.split_at(rest.find('/').unwrap_or(rest.len())))
    else {
        eprintln!("only http:// URLs");
        return ExitCode::from(2);
    };
    let path = if path.is_empty() { "/" } else { path };
    let start = Instant::now();
    for i in 0..n {
        if let Err(e) = get(authority, path) {
            eprintln!("request {i}: {e}");
            return ExitCode::FAILURE;
        }
    }
    println!("{n} {}", start.elapsed().as_secs_f64());
    ExitCode::SUCCESS
}

/// One GET: send, wait for the head, read the body to its end.
#[cfg(target_os = "wasi")]
fn get(authority: &str, path: &str) -> Result<(), String> {
    use wasip2::http::outgoing_handler::handle;
    use wasip2::http::types::{
        Fields, IncomingBody, Method, OutgoingBody, OutgoingRequest, Scheme,
    };
    use wasip2::io::streams::StreamError;

    let req = OutgoingRequest::new(Fields::new());
    let set = req.set_method(&Method::Get).is_ok()
        && req.set_scheme(Some(&Scheme::Http)).is_ok()
        && req.set_authority(Some(authority)).is_ok()
        && req.set_path_with_query(Some(path)).is_ok();
    if !set {
        return Err("building the request".into());
    }
    let body = req.body().map_err(|_| "request body")?;
    let future = handle(req, None).map_err(|e| format!("handle: {e:?}"))?;
    OutgoingBody::finish(body, None).map_err(|e| format!("finish: {e:?}"))?;
    let pollable = future.subscribe();
    pollable.block();
    drop(pollable);
    let resp = match future.get() {
        Some(Ok(Ok(resp))) => resp,
        Some(Ok(Err(e))) => return Err(format!("response: {e:?}")),
        _ => return Err("response future".into()),
    };
    drop(future);
    if resp.status() != 200 {
        return Err(format!("status {}", resp.status()));
    }
    let incoming = resp.consume().map_err(|_| "body")?;
    let stream = incoming.stream().map_err(|_| "body stream")?;
    loop {
        match stream.blocking_read(64 * 1024) {
            Ok(_) => {}
            Err(StreamError::Closed) => break,
            Err(e) => return Err(format!("reading the body: {e:?}")),
        }
    }
    drop(stream);
    drop(IncomingBody::finish(incoming));
    drop(resp);
    Ok(())
}

#[cfg(not(target_os = "wasi"))]
fn main() -> ExitCode {
    eprintln!("wasi-http-guest runs on wasm32-wasip2 (the benchmark suite builds it)");
    ExitCode::from(2)
}
