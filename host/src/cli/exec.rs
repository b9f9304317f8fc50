//! `scheduler exec`: one request, as curl sends it, through a user's instance.

use std::process::ExitCode;
use std::sync::Arc;

use super::args::ExecArgs;
use super::finish::usage;
use crate::engine;
use crate::results::output;
use crate::runtime;
use crate::runtime::exec as x;
use base64::Engine as _;

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

pub async fn exec(args: ExecArgs) -> ExitCode {
    let (call, url, params) = match request_of(&args) {
        Ok(r) => r,
        Err(code) => return code,
    };
    let runtime =
        match runtime::Tls::new(&tls_of(&args), &[]).and_then(|t| runtime::Runtime::new(2, t)) {
            Ok(r) => r,
            Err(e) => {
                eprintln!("scheduler: {e}");
                return ExitCode::FAILURE;
            }
        };
    // Only what the command names is reachable.
    let policy = Arc::new(runtime::Policy::default());
    engine::allow_url(&policy, &url).await;
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
            let tls = inst.tls_last.lock().ok().and_then(|l| l.clone());
            if args.json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&outcome_json(&args, &o, tls)).unwrap_or_default()
                );
            } else {
                print_outcome(&args, &o, tls);
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

/// The method, the URL and the executor's parameters the flags ask for.
fn request_of(args: &ExecArgs) -> Result<(x::HttpMethod, String, serde_json::Value), ExitCode> {
    let (method, url) = match (&args.url, &args.method) {
        (Some(url), None) => (args.first.clone(), url.clone()),
        (None, Some(m)) => (m.clone(), args.first.clone()),
        (None, None) if is_method(&args.first) => {
            return Err(usage(
                "exec takes METHOD URL (or a URL alone, or -X METHOD URL)",
            ));
        }
        (None, None) => {
            let m = if args.data.is_some() || args.data_binary.is_some() {
                "post"
            } else {
                "get"
            };
            (m.to_string(), args.first.clone())
        }
        (Some(_), Some(_)) => {
            return Err(usage("give the method once: METHOD URL, or -X METHOD URL"));
        }
    };
    let call = match method.to_ascii_lowercase().as_str() {
        "get" => x::HttpMethod::Get,
        "post" => x::HttpMethod::Post,
        "put" => x::HttpMethod::Put,
        "delete" => x::HttpMethod::Delete,
        "patch" => x::HttpMethod::Patch,
        "head" => x::HttpMethod::Head,
        "options" => x::HttpMethod::Options,
        other => return Err(usage(&format!("unknown method {other:?}"))),
    };
    let mut headers = serde_json::Map::new();
    for h in &args.headers {
        let Some((k, v)) = h.split_once(':') else {
            return Err(usage(&format!("--header wants \"Name: value\", got {h:?}")));
        };
        headers.insert(k.trim().to_string(), v.trim().into());
    }
    let mut params = serde_json::json!({ "url": url, "headers": headers });
    if let Some(ip) = &args.bind_ip {
        params["bind_ip"] = ip.clone().into();
    }
    body_params(args, &mut params).map_err(|e| usage(&e))?;
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
    Ok((call, url, params))
}

/// `-d` (text) or `--data-binary` (bytes) as the executor's `body` or `body_base64`.
fn body_params(args: &ExecArgs, params: &mut serde_json::Value) -> Result<(), String> {
    match (&args.data, &args.data_binary) {
        (Some(d), _) => match String::from_utf8(body_arg(d)?) {
            Ok(text) => params["body"] = text.into(),
            Err(_) => return Err("-d takes text; use --data-binary for bytes".into()),
        },
        (None, Some(d)) => {
            params["body_base64"] = base64::engine::general_purpose::STANDARD
                .encode(body_arg(d)?)
                .into()
        }
        (None, None) => {}
    }
    Ok(())
}

fn tls_of(args: &ExecArgs) -> compose::tls::TlsSettings {
    compose::tls::TlsSettings {
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
    }
}

fn pairs(hs: &[x::Header]) -> Vec<(String, String)> {
    hs.iter()
        .map(|h| (h.name.clone(), h.value.clone()))
        .collect()
}

/// `--json`: the outcome as one object.
fn outcome_json(
    args: &ExecArgs,
    o: &x::Outcome,
    tls: Option<compose::tls::Negotiated>,
) -> serde_json::Value {
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
    if let Some(t) = tls {
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
    v
}

/// The status line and head, the body's bytes as they came, and a summary on stderr.
fn print_outcome(args: &ExecArgs, o: &x::Outcome, tls: Option<compose::tls::Negotiated>) {
    use std::io::Write;
    println!("{} {}", o.status, o.reason);
    for h in &o.headers {
        println!("{}: {}", h.name, h.value);
    }
    println!();
    if args.output.is_none() {
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(&o.body).and_then(|()| out.flush());
    }
    for h in &o.trailers {
        eprintln!("trailer {}: {}", h.name, h.value);
    }
    if let Some(t) = tls {
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
        o.source_address.clone().unwrap_or_default(),
        o.timings.total_us as f64 / 1000.0,
        o.attempts,
        if o.reused_connection {
            ", connection reused"
        } else {
            ""
        }
    );
}
