//! What an answer or a failure prints and exits with, as curl.

use std::path::PathBuf;
use std::process::ExitCode;

use super::{ExecArgs, saved, writeout};
use crate::runtime;
use crate::runtime::exec as x;
use base64::Engine as _;

/// What was asked, for what an answer or a failure prints.
pub(super) struct Asked<'a> {
    pub method: &'a str,
    /// The URL as sent.
    pub url: &'a str,
    pub params: &'a serde_json::Value,
    /// The file the body goes to (`-o`, `-O`), or standard output.
    pub body_path: Option<PathBuf>,
    /// `-w`'s format, read.
    pub write_out: Option<String>,
}

/// What an answer prints and exits with, as curl: the head with `-D`, `-i` or `-I`, the body
/// on standard output (or in its file), the heads on standard error with `-v`, `-w` after
/// it; `-f` makes a status of 400 or more exit 22 without the body, `--fail-with-body` with
/// it.
pub(super) fn answered(
    args: &ExecArgs,
    asked: &Asked<'_>,
    o: &x::Outcome,
    tls: Option<compose::tls::Negotiated>,
) -> ExitCode {
    let version = version(args, o, tls.as_ref());
    if args.json {
        let v = outcome_json(args, o, tls);
        println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
        return ExitCode::SUCCESS;
    }
    if args.verbose {
        print_verbose(args, asked.method, asked.params, o, tls);
    }
    let (code, error) = write_answer(args, asked, o, version);
    if code != 0 && args.shows_errors() {
        eprintln!("scheduler: ({code}) {error}");
    }
    let path = asked.body_path.as_deref();
    let transfer = writeout::Transfer {
        outcome: Some(o),
        version,
        method: asked.method,
        url: asked.url,
        exit: code,
        error,
        filename: path.map(|p| p.display().to_string()),
        elapsed_us: o.timings.total_us,
    };
    if let Some(format) = &asked.write_out {
        writeout::print(format, &transfer);
    }
    ExitCode::from(code)
}

/// Write the answer where the flags say (`saved`): its exit code, and the error's message.
/// With `-f` a status of 400 or more keeps the body back; `--fail-with-body` writes it.
fn write_answer(args: &ExecArgs, asked: &Asked<'_>, o: &x::Outcome, version: &str) -> (u8, String) {
    let failing = (args.fail || args.fail_with_body) && o.status >= 400;
    let body = (!args.head && (!failing || args.fail_with_body)).then_some(o.body.as_slice());
    let (head, trailers) = (writeout::head_text(o, version), writeout::trailer_text(o));
    let parts = saved::Parts {
        head: &head,
        body,
        trailers: &trailers,
    };
    let include = args.include || args.head;
    match saved::write(args, asked.body_path.as_deref(), &parts, include) {
        Err(e) => (23, e),
        Ok(()) if failing => (
            22,
            format!("The requested URL returned error: {}", o.status),
        ),
        Ok(()) => (0, String::new()),
    }
}

/// An error's curl exit code, and its message unless `-s` (and not `-S`); `-w` after it, as
/// curl prints it (`%{http_code}` 000).
pub(super) fn failed(
    args: &ExecArgs,
    asked: &Asked<'_>,
    e: &x::ActionError,
    elapsed_us: u64,
) -> ExitCode {
    let code = curl_code(e);
    if args.json {
        println!(
            "{}",
            serde_json::json!({ "error": runtime::error_kind(e), "message": runtime::error_text(e), "exit_code": code })
        );
        return ExitCode::from(code);
    }
    if args.shows_errors() {
        eprintln!(
            "scheduler: ({code}) {}: {}",
            runtime::error_kind(e),
            runtime::error_text(e)
        );
    }
    if let Some(format) = &asked.write_out {
        let transfer = writeout::Transfer {
            outcome: None,
            version: "HTTP/1.1",
            method: asked.method,
            url: asked.url,
            exit: code,
            error: format!("{}: {}", runtime::error_kind(e), runtime::error_text(e)),
            filename: None,
            elapsed_us,
        };
        writeout::print(format, &transfer);
    }
    ExitCode::from(code)
}

/// curl's exit code for what went wrong, where curl has one (1 otherwise: a policy refusal,
/// a pool, an export).
pub fn curl_code(e: &x::ActionError) -> u8 {
    use x::ActionError as E;
    use x::TlsReason as R;
    match e {
        E::InvalidParams(p) if p.field == "url" => 3,
        E::InvalidParams(_) => 2,
        E::Dns(m) if m.starts_with("proxy ") => 5,
        E::Dns(_) => 6,
        E::Connect(_) => 7,
        E::Proxy(_) => 56,
        E::Timeout(_) => 28,
        E::Tls(t) => match t.reason {
            R::UnknownIssuer
            | R::BadCertificate
            | R::Expired
            | R::NotYetValid
            | R::NameMismatch => 60,
            _ => 35,
        },
        E::TooManyRedirects(_) | E::RedirectLoop(_) => 47,
        E::Protocol(m) if m.starts_with("truncated") => 18,
        E::Io(m) if m.contains("closed before a response") => 52,
        E::Io(_) => 56,
        E::Protocol(m) if m.contains("closed before a response") => 52,
        // A body in a coding that cannot be undone: a bad gzip or deflate (`"gzip" body: ...`)
        // or a transfer coding other than chunked.
        E::Protocol(m)
            if m.contains("\" body: ") || m.starts_with("unsupported transfer coding") =>
        {
            61
        }
        E::Protocol(m) if m.starts_with("bad chunked body") => 56,
        E::Protocol(_) => 8,
        E::TooLarge(_) => 63,
        E::BadRedirect(_) => 3,
        E::AccessDenied(_) | E::Pool(_) | E::ExportFailed(_) => 1,
    }
}

/// The protocol the answer came over: HTTP/2 with prior knowledge to an http:// URL, or
/// where the TLS handshake chose h2 by ALPN.
fn version(
    args: &ExecArgs,
    o: &x::Outcome,
    tls: Option<&compose::tls::Negotiated>,
) -> &'static str {
    let h2c = args.http2_prior_knowledge && o.final_url.starts_with("http:");
    let alpn = (args.http2 || args.http2_prior_knowledge)
        && o.final_url.starts_with("https:")
        && tls.is_some_and(|t| t.alpn.as_deref() == Some("h2"));
    match h2c || alpn {
        true => "HTTP/2",
        false => "HTTP/1.1",
    }
}

/// `-v`: what the connection was, the request's head as sent (`>`) and the response's (`<`).
fn print_verbose(
    args: &ExecArgs,
    method: &str,
    params: &serde_json::Value,
    o: &x::Outcome,
    tls: Option<compose::tls::Negotiated>,
) {
    eprintln!(
        "* from {} in {:.2} ms ({} attempt(s), {} redirect(s){})",
        o.source_address.clone().unwrap_or_default(),
        o.timings.total_us as f64 / 1000.0,
        o.attempts,
        o.redirects,
        if o.reused_connection {
            ", connection reused"
        } else {
            ""
        }
    );
    if let Some(t) = &tls {
        let unverified = if args.insecure {
            ", certificate NOT verified"
        } else {
            ""
        };
        let resumed = if t.resumed { ", resumed" } else { "" };
        let alpn = t
            .alpn
            .as_deref()
            .map(|p| format!(", ALPN {p}"))
            .unwrap_or_default();
        eprintln!(
            "* {} {}{resumed}{alpn}{unverified}",
            t.version, t.cipher_suite
        );
    }
    let target = url::Url::parse(&o.final_url).ok();
    let path = target.as_ref().map_or("/".to_string(), |u| {
        u.query()
            .map_or(u.path().to_string(), |q| format!("{}?{q}", u.path()))
    });
    let proxy = params["proxy"]
        .as_str()
        .and_then(|p| url::Url::parse(p).ok());
    if let Some(p) = &proxy {
        let port = p.port().unwrap_or(1080);
        eprintln!(
            "* through the proxy {}:{port}",
            p.host_str().unwrap_or_default()
        );
    }
    // Through a proxy, a plain http request names its whole URL.
    let target_text = match (&proxy, &target) {
        (Some(_), Some(u)) if u.scheme() == "http" => u.as_str().to_string(),
        _ => path,
    };
    let version = version(args, o, tls.as_ref());
    eprintln!("> {method} {target_text} {version}");
    if let Some(host) = target.as_ref().and_then(|u| u.host_str()) {
        eprintln!("> Host: {host}");
    }
    for (k, v) in params["headers"].as_object().into_iter().flatten() {
        eprintln!("> {k}: {}", v.as_str().unwrap_or_default());
    }
    eprintln!(">");
    eprintln!("< {version} {} {}", o.status, o.reason);
    for h in &o.headers {
        eprintln!("< {}: {}", h.name, h.value);
    }
    eprintln!("<");
    for h in &o.trailers {
        eprintln!("< trailer {}: {}", h.name, h.value);
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
