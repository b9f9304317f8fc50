//! The request the flags ask for: method, URL, headers, body and the executor's parameters.

use std::process::ExitCode;

use super::ExecArgs;
use super::body as flags_body;
use crate::cli::finish::usage;
use crate::runtime::body;
use crate::runtime::exec as x;
use base64::Engine as _;

/// What `exec` sends: the method, the URL as sent (with `-G`'s query) and the executor's
/// parameters.
pub(super) struct Req {
    pub call: x::HttpMethod,
    pub url: String,
    pub params: serde_json::Value,
    /// A body with files in it, streamed as it is sent.
    pub upload: Option<crate::runtime::body::Opened>,
}

/// The method the flags ask for: `-X`, or as curl picks it (`-I` HEAD, `-T` PUT, `-G` GET, a
/// body POST).
fn method_of(args: &ExecArgs) -> Result<(String, String), ExitCode> {
    Ok(match (&args.url, &args.method) {
        (Some(url), None) => (args.first.clone(), url.clone()),
        (None, Some(m)) => (m.clone(), args.first.clone()),
        (None, None) if is_method(&args.first) => {
            return Err(usage(
                "exec takes METHOD URL (or a URL alone, or -X METHOD URL)",
            ));
        }
        (None, None) => {
            let has_data = !(args.data.is_empty()
                && args.data_raw.is_empty()
                && args.data_binary.is_empty()
                && args.data_urlencode.is_empty());
            let m = if args.head {
                "head"
            } else if args.upload_file.is_some() {
                "put"
            } else if !args.form.is_empty() {
                // -G does not apply to a form, as curl.
                "post"
            } else if args.get {
                "get"
            } else if has_data || args.data_json.is_some() {
                "post"
            } else {
                "get"
            };
            (m.to_string(), args.first.clone())
        }
        (Some(_), Some(_)) => {
            return Err(usage("give the method once: METHOD URL, or -X METHOD URL"));
        }
    })
}

/// The URL as sent: `-G`'s data as its query, `-T`'s file name after a trailing `/`.
fn url_of(args: &ExecArgs, url: &str) -> Result<String, String> {
    // Without a scheme curl guesses http (`127.0.0.1:8080/x`).
    let mut url = match url.contains("://") {
        true => url.to_string(),
        false => format!("http://{url}"),
    };
    if let Some(path) = &args.upload_file
        && url.ends_with('/')
        && path.as_os_str() != "-"
        && let Some(name) = path.file_name()
    {
        url.push_str(&flags_body::urlencode(name.to_string_lossy().as_bytes()).replace('+', "%20"));
    }
    if args.get
        && let Some(query) = flags_body::data(args)?
    {
        url = with_query(&url, &String::from_utf8_lossy(&query));
    }
    if let Some(query) = flags_body::url_query(args)? {
        url = with_query(&url, &query);
    }
    Ok(url)
}

/// `url` with `query` added to its query (before its fragment).
fn with_query(url: &str, query: &str) -> String {
    let (base, fragment) = match url.split_once('#') {
        Some((b, f)) => (b, Some(f)),
        None => (url, None),
    };
    let sep = if base.contains('?') { '&' } else { '?' };
    match fragment {
        Some(f) => format!("{base}{sep}{query}#{f}"),
        None => format!("{base}{sep}{query}"),
    }
}

fn call_of(method: &str) -> Result<x::HttpMethod, ExitCode> {
    Ok(match method.to_ascii_lowercase().as_str() {
        "get" => x::HttpMethod::Get,
        "post" => x::HttpMethod::Post,
        "put" => x::HttpMethod::Put,
        "delete" => x::HttpMethod::Delete,
        "patch" => x::HttpMethod::Patch,
        "head" => x::HttpMethod::Head,
        "options" => x::HttpMethod::Options,
        other => return Err(usage(&format!("unknown method {other:?}"))),
    })
}

/// What the flags make the request, as curl names them: two of them are refused, as curl
/// refuses them (-X changes the method's name only).
fn one_kind(args: &ExecArgs) -> Result<(), ExitCode> {
    let data = !(args.data.is_empty()
        && args.data_raw.is_empty()
        && args.data_binary.is_empty()
        && args.data_urlencode.is_empty()
        && args.data_json.is_none());
    let kinds = [
        (args.head, "HEAD (-I, --head)"),
        (data && !args.get, "POST (-d, --data)"),
        (!args.form.is_empty(), "multipart formpost (-F, --form)"),
        (args.upload_file.is_some(), "PUT (-T, --upload-file)"),
    ];
    let asked: Vec<&str> = kinds.iter().filter(|k| k.0).map(|k| k.1).collect();
    match asked.as_slice() {
        [first, second, ..] => Err(usage(&format!(
            "you can only select one HTTP request method, and asked for both {first} and {second}"
        ))),
        _ => Ok(()),
    }
}

/// A duration in whole milliseconds, as curl counts them; 0 (or under a millisecond) is none:
/// no limit, or the default.
fn curl_ms(d: Option<std::time::Duration>) -> Option<u64> {
    d.map(|d| d.as_millis() as u64).filter(|&ms| ms > 0)
}

/// `--retry N` as curl retries: a timeout and the answers 408, 429, 500, 502, 503 and 504
/// (with `--retry-all-errors` and `-f`, any of 400 or more), a refused connection with
/// `--retry-connrefused`, any method; one second's wait doubling up to ten minutes, or
/// `--retry-delay`; no new try after `--retry-max-time`.
fn retries(args: &ExecArgs) -> Option<serde_json::Value> {
    let all = args.retry_all_errors;
    let statuses: Vec<u16> = match all && (args.fail || args.fail_with_body) {
        true => http_core::StatusSet::CODES.collect(),
        false => vec![408, 429, 500, 502, 503, 504],
    };
    let mut r = serde_json::json!({
        "max": args.retry?, "statuses": statuses, "connect": args.retry_connrefused || all,
        "all_errors": all, "non_idempotent": true, "base_ms": 1000, "max_backoff_ms": 600_000,
    });
    if let Some(ms) = curl_ms(args.retry_delay) {
        r["delay_ms"] = ms.into();
    }
    if let Some(ms) = curl_ms(args.retry_max_time) {
        r["max_time_ms"] = ms.into();
    }
    Some(r)
}

/// The URL's `user:password@`, as curl takes it: out of the URL, percent-decoded, for Basic
/// authentication (`-u` goes first).
fn url_user(url: String) -> (String, Option<String>) {
    let Ok(mut u) = url::Url::parse(&url) else {
        return (url, None);
    };
    if u.username().is_empty() && u.password().is_none() {
        return (url, None);
    }
    let decode = |t: &str| {
        percent_encoding::percent_decode_str(t)
            .decode_utf8_lossy()
            .into_owned()
    };
    let user = format!(
        "{}:{}",
        decode(u.username()),
        decode(u.password().unwrap_or(""))
    );
    let _ = (u.set_username(""), u.set_password(None));
    (u.into(), Some(user))
}

/// The method, the URL and the executor's parameters the flags ask for.
pub(super) fn request_of(args: &ExecArgs) -> Result<Req, ExitCode> {
    one_kind(args)?;
    let (method, url) = method_of(args)?;
    let call = call_of(&method)?;
    let url = url_of(args, &url).map_err(|e| usage(&e))?;
    let (url, user) = url_user(url);
    let user = args.user.clone().or(user);
    let mut headers = serde_json::Map::new();
    let mut removed = Vec::new();
    for h in &header_lines(args)? {
        match header_arg(h)? {
            HeaderArg::Set(k, v) => {
                headers.insert(k, v.into());
            }
            HeaderArg::Remove(k) => removed.push(k),
        }
    }
    let body = flags_body::body(args, &body::boundary()).map_err(|e| usage(&e))?;
    // As curl: `Name:` takes away the header a flag or the executor would add; a header given
    // with a value is sent whatever else `-H` says of its name.
    removed.retain(|r| !has_header(&headers, r));
    curl_headers(args, user.as_deref(), body.as_ref(), &mut headers);
    remove_headers(&mut headers, &removed);
    let mut params = serde_json::json!({ "url": url, "headers": headers });
    // Redirects are followed with -L only, as curl follows them.
    params["redirects"] = if args.location {
        serde_json::json!({ "follow": true, "max": args.max_redirs.unwrap_or(50).min(100) })
    } else {
        false.into()
    };
    let upload = match body.map(in_memory) {
        Some(Ok(bytes)) => {
            params["body_base64"] = base64::engine::general_purpose::STANDARD
                .encode(bytes)
                .into();
            None
        }
        // curl's 26: a file to send that cannot be read.
        Some(Err(plan)) => Some(plan.open().map_err(|e| fail(26, &e))?),
        None => None,
    };
    connection_params(args, &mut params).map_err(|e| usage(&e))?;
    Ok(Req {
        call,
        url,
        params,
        upload,
    })
}

/// A body of bytes alone, joined; or the plan back when it has files.
fn in_memory(plan: body::Plan) -> Result<Vec<u8>, body::Plan> {
    let mut out = Vec::new();
    for p in &plan.pieces {
        match p {
            body::Piece::Bytes(b) => out.extend_from_slice(b),
            body::Piece::File(_) => return Err(plan),
        }
    }
    Ok(out)
}

fn fail(code: u8, message: &str) -> ExitCode {
    eprintln!("scheduler: ({code}) {message}");
    ExitCode::from(code)
}

/// Where and how the connection is made, and how long it may take: the source address and
/// port, the family, `--resolve`, the deadlines, retries and the read rate.
fn connection_params(args: &ExecArgs, params: &mut serde_json::Value) -> Result<(), String> {
    if let Some(ip) = &args.bind_ip {
        params["bind_ip"] = ip.clone().into();
    }
    if let Some(i) = &args.interface {
        params["bind_ip"] = super::interface::address_of(i, args.ipv6)?
            .to_string()
            .into();
    }
    if let Some(p) = &args.local_port {
        params["local_port"] = p.clone().into();
    }
    if args.ipv4 || args.ipv6 {
        params["ip_version"] = if args.ipv4 { 4 } else { 6 }.into();
    }
    if !args.resolve.is_empty() {
        params["resolve"] = args.resolve.clone().into();
    }
    let mut timeouts = serde_json::Map::new();
    if let Some(ms) = curl_ms(args.max_time) {
        timeouts.insert("total_ms".into(), ms.into());
    }
    if let Some(ms) = curl_ms(args.connect_timeout) {
        timeouts.insert("connect_ms".into(), ms.into());
    }
    if !timeouts.is_empty() {
        params["timeouts"] = timeouts.into();
    }
    if let Some(r) = retries(args) {
        params["retries"] = r;
    }
    if args.compressed {
        params["decompress"] = true.into();
    }
    if args.http2_prior_knowledge {
        params["http_version"] = "2".into();
    } else if args.http2 {
        params["http_version"] = "auto".into();
    }
    if let Some(r) = args.limit_rate {
        params["limit_rate"] = r.into();
    }
    if super::cookies::engine_on(args) {
        params["cookies"] = true.into();
    }
    Ok(())
}

/// A `--header` as curl reads it.
enum HeaderArg {
    /// `Name: value`, or `Name;` for the header with an empty value.
    Set(String, String),
    /// `Name:` with nothing after the colon: the header a flag or the executor would add is
    /// not sent.
    Remove(String),
}

/// The `-H` arguments, each `@FILE` (`@-`: standard input) read as a header a line, blank lines
/// left out (curl's, since 7.55).
fn header_lines(args: &ExecArgs) -> Result<Vec<String>, ExitCode> {
    let mut out = Vec::new();
    for h in &args.headers {
        if !h.starts_with('@') {
            out.push(h.clone());
            continue;
        }
        let bytes = flags_body::body_arg(h).map_err(|e| usage(&e))?;
        let text = String::from_utf8(bytes)
            .map_err(|_| usage(&format!("--header {h}: the file is not UTF-8 text")))?;
        let lines = text.lines().filter(|l| !l.trim().is_empty());
        out.extend(lines.map(str::to_string));
    }
    Ok(out)
}

fn header_arg(h: &str) -> Result<HeaderArg, ExitCode> {
    if let Some((k, v)) = h.split_once(':') {
        let (k, v) = (k.trim().to_string(), v.trim());
        return Ok(match v.is_empty() {
            true => HeaderArg::Remove(k),
            false => HeaderArg::Set(k, v.to_string()),
        });
    }
    match h.trim().strip_suffix(';') {
        Some(k) if !k.trim().is_empty() => Ok(HeaderArg::Set(k.trim().to_string(), String::new())),
        _ => Err(usage(&format!(
            "--header wants \"Name: value\" (or \"Name:\" to remove it, \"Name;\" for an empty \
             value), got {h:?}"
        ))),
    }
}

type HeaderMap = serde_json::Map<String, serde_json::Value>;

/// Whether `headers` has one named `name` (names compare without case).
fn has_header(headers: &HeaderMap, name: &str) -> bool {
    headers.keys().any(|k| k.eq_ignore_ascii_case(name))
}

/// Take the headers `-H "Name:"` removed (and no `-H` gave) out of `headers`. The executor
/// sends a `Host` and a `User-Agent` of its own when none is given, so those two go empty.
fn remove_headers(headers: &mut HeaderMap, removed: &[String]) {
    for name in removed {
        headers.retain(|k, _| !k.eq_ignore_ascii_case(name));
        if name.eq_ignore_ascii_case("host") || name.eq_ignore_ascii_case("user-agent") {
            headers.insert(name.clone(), String::new().into());
        }
    }
}

/// The headers curl's flags add, unless `-H` gave them: `-A`, `-e`, `user` (`-u` or the URL's,
/// Basic), the body's type, `--data-json`'s Accept (else curl's `*/*`) and `-b`'s cookie
/// strings.
fn curl_headers(
    args: &ExecArgs,
    user: Option<&str>,
    body: Option<&body::Plan>,
    headers: &mut HeaderMap,
) {
    let mut add = |name: &str, value: String| {
        if !has_header(headers, name) {
            headers.insert(name.to_string(), value.into());
        }
    };
    if let Some(a) = &args.user_agent {
        add("User-Agent", a.clone());
    }
    if let Some(r) = &args.referer {
        add("Referer", r.clone());
    }
    if let Some(r) = &args.range {
        add("Range", format!("bytes={r}"));
    }
    if let Some(u) = user {
        let token = base64::engine::general_purpose::STANDARD.encode(u.as_bytes());
        add("Authorization", format!("Basic {token}"));
    }
    if let Some(t) = body.and_then(|b| b.content_type.clone()) {
        add("Content-Type", t);
    }
    if args.data_json.is_some() {
        add("Accept", "application/json".into());
    }
    add("Accept", "*/*".into());
    if let Some(c) = super::cookies::header(args) {
        add("Cookie", c);
    }
}

fn is_method(s: &str) -> bool {
    ["get", "post", "put", "delete", "patch", "head", "options"]
        .contains(&s.to_ascii_lowercase().as_str())
}
