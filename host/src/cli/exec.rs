//! `scheduler exec`: one request, as curl sends it, through a user's instance.

use std::io::Write as _;
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

/// `-d`'s argument: the text, or `@FILE`'s bytes without carriage returns and newlines, as
/// curl reads them.
fn data_arg(arg: &str) -> Result<Vec<u8>, String> {
    let mut bytes = body_arg(arg)?;
    if arg.starts_with('@') {
        bytes.retain(|b| *b != b'\r' && *b != b'\n');
    }
    Ok(bytes)
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
    // Only what the command names is reachable (with -L, any port of its host too).
    let policy = Arc::new(runtime::Policy::default());
    engine::allow_url(&policy, &url).await;
    if args.location {
        for t in engine::target_of_url(&url).await.unwrap_or_default() {
            policy.allow_host(t.ip());
        }
    }
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
            let tls = inst.tls_last.lock().ok().and_then(|l| l.clone());
            answered(&args, &params, &o, tls)
        }
        Ok(Err(e)) => failed(&args, &e),
        Err(e) => {
            eprintln!("scheduler: {e}");
            ExitCode::FAILURE
        }
    }
}

/// What an answer prints and exits with, as curl: the body on standard output (or in `-o`),
/// the head before it with `-i` or `-I`, the heads on standard error with `-v`, `-w` after
/// it; `-f` makes a status of 400 or more exit 22.
fn answered(
    args: &ExecArgs,
    params: &serde_json::Value,
    o: &x::Outcome,
    tls: Option<compose::tls::Negotiated>,
) -> ExitCode {
    if args.json {
        let v = outcome_json(args, o, tls);
        println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
        return ExitCode::SUCCESS;
    }
    if args.verbose {
        print_verbose(args, params, o, tls);
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
        let _ = out.write_all(head_text(o).as_bytes());
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
fn failed(args: &ExecArgs, e: &x::ActionError) -> ExitCode {
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
        E::Dns(_) => 6,
        E::Connect(_) => 7,
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

/// The response head as it came: the status line and each header, CRLF-ended.
fn head_text(o: &x::Outcome) -> String {
    let mut t = format!("HTTP/1.1 {} {}\r\n", o.status, o.reason);
    for h in &o.headers {
        t.push_str(&format!("{}: {}\r\n", h.name, h.value));
    }
    t.push_str("\r\n");
    t
}

/// `-w`: curl's variables replaced, `\n` and `\t` as characters.
fn write_out(format: &str, o: &x::Outcome) -> String {
    let source = o.source_address.clone().unwrap_or_default();
    let local_ip = source
        .rsplit_once(':')
        .map_or(source.as_str(), |(ip, _)| ip)
        .trim_matches(['[', ']'])
        .to_string();
    let remote_ip = url::Url::parse(&o.final_url)
        .ok()
        .and_then(|u| u.host_str().map(|h| h.trim_matches(['[', ']']).to_string()))
        .unwrap_or_default();
    format
        .replace("%{http_code}", &format!("{:03}", o.status))
        .replace("%{response_code}", &format!("{:03}", o.status))
        .replace(
            "%{time_total}",
            &format!("{:.6}", o.timings.total_us as f64 / 1e6),
        )
        .replace("%{size_download}", &o.body_length.to_string())
        .replace("%{url_effective}", &o.final_url)
        .replace("%{remote_ip}", &remote_ip)
        .replace("%{local_ip}", &local_ip)
        .replace("\\n", "\n")
        .replace("\\t", "\t")
}

/// `-v`: what the connection was, the request's head as sent (`>`) and the response's (`<`).
fn print_verbose(
    args: &ExecArgs,
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
    if let Some(t) = tls {
        let unverified = if args.insecure {
            ", certificate NOT verified"
        } else {
            ""
        };
        let resumed = if t.resumed { ", resumed" } else { "" };
        eprintln!("* {} {}{resumed}{unverified}", t.version, t.cipher_suite);
    }
    let target = url::Url::parse(&o.final_url).ok();
    let path = target.as_ref().map_or("/".to_string(), |u| {
        u.query()
            .map_or(u.path().to_string(), |q| format!("{}?{q}", u.path()))
    });
    let method = if args.head { "HEAD" } else { "GET" };
    let method = args.method.as_deref().unwrap_or(method);
    eprintln!("> {} {path} HTTP/1.1", method.to_ascii_uppercase());
    if let Some(host) = target.as_ref().and_then(|u| u.host_str()) {
        eprintln!("> Host: {host}");
    }
    for (k, v) in params["headers"].as_object().into_iter().flatten() {
        eprintln!("> {k}: {}", v.as_str().unwrap_or_default());
    }
    eprintln!(">");
    eprintln!("< HTTP/1.1 {} {}", o.status, o.reason);
    for h in &o.headers {
        eprintln!("< {}: {}", h.name, h.value);
    }
    eprintln!("<");
    for h in &o.trailers {
        eprintln!("< trailer {}: {}", h.name, h.value);
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
            let m = if args.head {
                "head"
            } else if args.data.is_some() || args.data_binary.is_some() {
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
    curl_headers(args, &mut headers);
    let mut params = serde_json::json!({ "url": url, "headers": headers });
    // Redirects are followed with -L only, as curl follows them.
    params["redirects"] = if args.location {
        serde_json::json!({ "follow": true, "max": args.max_redirs.unwrap_or(50).min(100) })
    } else {
        false.into()
    };
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

/// The headers curl's flags add, unless `-H` gave them: `-A`, `-e`, `-u` (Basic), and a form
/// type for `-d` and `--data-binary`.
fn curl_headers(args: &ExecArgs, headers: &mut serde_json::Map<String, serde_json::Value>) {
    let mut add = |name: &str, value: String| {
        if !headers.keys().any(|k| k.eq_ignore_ascii_case(name)) {
            headers.insert(name.to_string(), value.into());
        }
    };
    if let Some(a) = &args.user_agent {
        add("User-Agent", a.clone());
    }
    if let Some(r) = &args.referer {
        add("Referer", r.clone());
    }
    if let Some(u) = &args.user {
        let token = base64::engine::general_purpose::STANDARD.encode(u.as_bytes());
        add("Authorization", format!("Basic {token}"));
    }
    if args.data.is_some() || args.data_binary.is_some() {
        add("Content-Type", "application/x-www-form-urlencoded".into());
    }
}

/// `-d` (text) or `--data-binary` (bytes) as the executor's `body` or `body_base64`.
fn body_params(args: &ExecArgs, params: &mut serde_json::Value) -> Result<(), String> {
    match (&args.data, &args.data_binary) {
        (Some(d), _) => match String::from_utf8(data_arg(d)?) {
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
