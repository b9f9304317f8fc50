//! What an answer or a failure prints and exits with, as curl.

use std::io::Write as _;
use std::process::ExitCode;

use super::ExecArgs;
use crate::results::output;
use crate::runtime;
use crate::runtime::exec as x;
use base64::Engine as _;

/// What an answer prints and exits with, as curl: the body on standard output (or in `-o`),
/// the head before it with `-i` or `-I`, the heads on standard error with `-v`, `-w` after
/// it; `-f` makes a status of 400 or more exit 22.
pub(super) fn answered(
    args: &ExecArgs,
    method: &str,
    params: &serde_json::Value,
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
        print_verbose(args, method, params, o, tls);
    }
    if args.fail && o.status >= 400 {
        if !args.silent || args.show_error {
            eprintln!(
                "scheduler: (22) The requested URL returned error: {}",
                o.status
            );
        }
        return ExitCode::from(22);
    }
    if let Some(path) = &args.output
        && let Err(e) = output::write_file(path, &o.body)
    {
        eprintln!("scheduler: (23) writing {}: {e}", path.display());
        return ExitCode::from(23);
    }
    let mut out = std::io::stdout().lock();
    if args.include || args.head {
        let _ = out.write_all(head_text(o, version).as_bytes());
    }
    if args.output.is_none() && !args.head {
        let _ = out.write_all(&o.body);
    }
    if let Some(format) = &args.write_out {
        let _ = out.write_all(write_out(format, o).as_bytes());
    }
    let _ = out.flush();
    ExitCode::SUCCESS
}

/// An error's curl exit code, and its message unless `-s` (and not `-S`).
pub(super) fn failed(args: &ExecArgs, e: &x::ActionError) -> ExitCode {
    let code = curl_code(e);
    if args.json {
        println!(
            "{}",
            serde_json::json!({ "error": runtime::error_kind(e), "message": runtime::error_text(e), "exit_code": code })
        );
    } else if !args.silent || args.show_error {
        eprintln!(
            "scheduler: ({code}) {}: {}",
            runtime::error_kind(e),
            runtime::error_text(e)
        );
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
        E::Io(m) if m.contains("closed before a response") => 52,
        E::Io(_) => 56,
        E::Protocol(m) if m.contains("closed before a response") => 52,
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

/// The response head as it came: the status line and each header, CRLF-ended.
fn head_text(o: &x::Outcome, version: &str) -> String {
    let mut t = format!("{version} {} {}\r\n", o.status, o.reason);
    for h in &o.headers {
        t.push_str(&format!("{}: {}\r\n", h.name, h.value));
    }
    t.push_str("\r\n");
    t
}

/// `-w`: curl's variables replaced in one pass, `%%`, `\n`, `\r` and `\t` as characters.
fn write_out(format: &str, o: &x::Outcome) -> String {
    let vars = write_out_vars(o);
    let mut out = String::with_capacity(format.len());
    let mut rest = format;
    while let Some(i) = rest.find(['%', '\\']) {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        let (text, used) =
            if let Some(name) = tail.strip_prefix("%{").and_then(|t| t.split_once('}')) {
                let value = vars
                    .iter()
                    .find(|(n, _)| *n == name.0)
                    .map(|(_, v)| v.as_str());
                (value.unwrap_or_default(), name.0.len() + 3)
            } else if tail.starts_with("%%") {
                ("%", 2)
            } else if tail.starts_with("\\n") {
                ("\n", 2)
            } else if tail.starts_with("\\t") {
                ("\t", 2)
            } else if tail.starts_with("\\r") {
                ("\r", 2)
            } else {
                (&tail[..1], 1)
            };
        out.push_str(text);
        rest = &tail[used..];
    }
    out.push_str(rest);
    out
}

/// `-w`'s variables for an outcome (an unknown one prints nothing, as curl).
fn write_out_vars(o: &x::Outcome) -> Vec<(&'static str, String)> {
    let source = o.source_address.clone().unwrap_or_default();
    let (local_ip, local_port) = source.rsplit_once(':').unwrap_or((source.as_str(), ""));
    let target = url::Url::parse(&o.final_url).ok();
    let remote_ip = target
        .as_ref()
        .and_then(|u| u.host_str().map(|h| h.trim_matches(['[', ']']).to_string()))
        .unwrap_or_default();
    let remote_port = target
        .as_ref()
        .and_then(|u| u.port_or_known_default())
        .map(|p| p.to_string())
        .unwrap_or_default();
    let content_type = o
        .headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("content-type"))
        .map(|h| h.value.clone())
        .unwrap_or_default();
    let secs = |us: u64| format!("{:.6}", us as f64 / 1e6);
    let t = &o.timings;
    vec![
        ("http_code", format!("{:03}", o.status)),
        ("response_code", format!("{:03}", o.status)),
        ("time_total", secs(t.total_us)),
        ("time_namelookup", secs(t.dns_us)),
        ("time_connect", secs(t.dns_us + t.connect_us)),
        ("time_appconnect", secs(t.dns_us + t.connect_us + t.tls_us)),
        ("size_download", o.body_length.to_string()),
        ("url_effective", o.final_url.clone()),
        ("remote_ip", remote_ip),
        ("remote_port", remote_port),
        ("local_ip", local_ip.trim_matches(['[', ']']).to_string()),
        ("local_port", local_port.to_string()),
        ("num_redirects", o.redirects.to_string()),
        ("content_type", content_type),
    ]
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
