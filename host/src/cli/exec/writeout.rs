//! `-w`: curl's write-out, printed after an answer and after a failure alike, its variables
//! read from the answer or, when none came, from what was asked (`%{http_code}` 000).

use std::io::Write;

use crate::runtime::exec as x;

/// What a transfer was, for `-w`.
pub(super) struct Transfer<'a> {
    /// The answer, if one came.
    pub outcome: Option<&'a x::Outcome>,
    /// The answer's protocol (`HTTP/1.1`, `HTTP/2`).
    pub version: &'static str,
    pub method: &'a str,
    /// The URL asked for.
    pub url: &'a str,
    /// The exit code, and a failure's message.
    pub exit: u8,
    pub error: String,
    /// The file the body went to.
    pub filename: Option<String>,
    /// Microseconds from the start to the failure (an answer has its own timings).
    pub elapsed_us: u64,
}

/// `-w`'s format: as given, or `@FILE`'s text (`@-`: standard input) without its carriage
/// returns and newlines, as curl reads it. A file that cannot be read is an error (curl
/// prints nothing).
pub(super) fn format_of(arg: Option<&str>) -> Result<Option<String>, String> {
    let Some(arg) = arg else {
        return Ok(None);
    };
    let Some(path) = arg.strip_prefix('@') else {
        return Ok(Some(arg.to_string()));
    };
    let text = match path {
        "-" => std::io::read_to_string(std::io::stdin()),
        _ => std::fs::read_to_string(path),
    }
    .map_err(|e| format!("-w @{path}: {e}"))?;
    Ok(Some(text.replace(['\r', '\n'], "")))
}

/// A piece of the format: text as it is, a variable, a response header (`%header{NAME}`).
enum Token<'a> {
    Text(&'a str),
    Var(&'a str),
    Header(&'a str),
}

/// The format's next token and the bytes it took; `%%`, `\n`, `\r` and `\t` are text.
fn next_token(s: &str) -> (Token<'_>, usize) {
    if let Some((name, _)) = s.strip_prefix("%{").and_then(|t| t.split_once('}')) {
        return (Token::Var(name), name.len() + 3);
    }
    if let Some((name, _)) = s.strip_prefix("%header{").and_then(|t| t.split_once('}')) {
        return (Token::Header(name), name.len() + 9);
    }
    let escape = ["%%", "\\n", "\\r", "\\t"]
        .iter()
        .zip(["%", "\n", "\r", "\t"])
        .find(|(e, _)| s.starts_with(**e));
    if let Some((_, text)) = escape {
        return (Token::Text(text), 2);
    }
    let end = s[1..].find(['%', '\\']).map_or(s.len(), |i| i + 1);
    (Token::Text(&s[..end]), end)
}

/// Print `format` for `t`: to standard output, or standard error after `%{stderr}`; nothing
/// after `%{onerror}` when the transfer succeeded. An unknown variable prints nothing and a
/// warning, as curl.
pub(super) fn print(format: &str, t: &Transfer<'_>) {
    let (mut out, mut err) = (std::io::stdout().lock(), std::io::stderr().lock());
    let mut to_err = false;
    let mut rest = format;
    while !rest.is_empty() {
        let (token, used) = next_token(rest);
        rest = &rest[used..];
        let text = match token {
            Token::Text(text) => text.to_string(),
            Token::Var(stream @ ("stdout" | "stderr")) => {
                to_err = stream == "stderr";
                continue;
            }
            Token::Var("onerror") if t.exit == 0 => break,
            Token::Var("onerror") => continue,
            Token::Var(name) => variable(name, t).unwrap_or_else(|| {
                let _ = writeln!(err, "scheduler: unknown --write-out variable: '{name}'");
                String::new()
            }),
            Token::Header(name) => header(t.outcome, name),
        };
        let sink: &mut dyn Write = if to_err { &mut err } else { &mut out };
        let _ = sink.write_all(text.as_bytes());
    }
    let _ = out.flush();
}

/// A response header's values, in the order they came (none when no answer came).
fn values<'a>(o: Option<&'a x::Outcome>, name: &str) -> Vec<&'a str> {
    o.map(|o| o.headers.as_slice())
        .unwrap_or_default()
        .iter()
        .filter(|h| h.name.eq_ignore_ascii_case(name))
        .map(|h| h.value.as_str())
        .collect()
}

/// A response header's values (`, ` between several), empty when none came.
fn header(o: Option<&x::Outcome>, name: &str) -> String {
    values(o, name).join(", ")
}

/// The variable `name` for `t`, `None` when curl has no such variable here.
fn variable(name: &str, t: &Transfer<'_>) -> Option<String> {
    let o = t.outcome;
    let secs = |us: u64| format!("{:.6}", us as f64 / 1e6);
    let phases = |f: fn(&x::Timings) -> u64| secs(o.map_or(0, |o| f(&o.timings)));
    let count = |f: fn(&x::Outcome) -> u64| o.map_or(0, f).to_string();
    Some(match name {
        "http_code" | "response_code" => format!("{:03}", o.map_or(0, |o| o.status)),
        "time_total" => secs(o.map_or(t.elapsed_us, |o| o.timings.total_us)),
        "time_namelookup" => phases(|t| t.dns_us),
        "time_connect" => phases(|t| t.dns_us + t.connect_us),
        "time_appconnect" => phases(|t| match t.tls_us {
            0 => 0,
            tls => t.dns_us + t.connect_us + tls,
        }),
        "time_pretransfer" => phases(|t| t.dns_us + t.connect_us + t.tls_us),
        "time_starttransfer" => phases(|t| t.dns_us + t.connect_us + t.tls_us + t.first_byte_us),
        "size_download" => count(|o| o.body_length),
        "speed_download" => count(speed),
        "size_header" => o.map_or(0, |o| head_text(o, t.version).len()).to_string(),
        "num_redirects" => count(|o| u64::from(o.redirects)),
        "url_effective" => o.map_or(t.url, |o| &o.final_url).to_string(),
        "redirect_url" => o.and_then(redirect_url).unwrap_or_default(),
        "content_type" => header(o, "content-type"),
        "http_version" => o
            .map_or("0", |_| t.version.trim_start_matches("HTTP/"))
            .into(),
        "scheme" => o.map(scheme).unwrap_or_default(),
        "method" => t.method.into(),
        "exitcode" => t.exit.to_string(),
        "errormsg" => t.error.clone(),
        "filename_effective" => t.filename.clone().unwrap_or_default(),
        "header_json" => header_json(o),
        "json" => json(t),
        "url" => t.url.into(),
        "remote_ip" | "remote_port" | "local_ip" | "local_port" => address(name, o),
        _ => return None,
    })
}

/// `%{json}`'s numbers and texts (an empty text is null), as curl names them.
const JSON_NUMBERS: [&str; 15] = [
    "exitcode",
    "http_code",
    "local_port",
    "num_redirects",
    "remote_port",
    "response_code",
    "size_download",
    "size_header",
    "speed_download",
    "time_appconnect",
    "time_connect",
    "time_namelookup",
    "time_pretransfer",
    "time_starttransfer",
    "time_total",
];
const JSON_TEXTS: [&str; 11] = [
    "content_type",
    "errormsg",
    "filename_effective",
    "http_version",
    "local_ip",
    "method",
    "redirect_url",
    "remote_ip",
    "scheme",
    "url",
    "url_effective",
];

/// `%{json}`: the variables above as one JSON object.
fn json(t: &Transfer<'_>) -> String {
    let mut m = serde_json::Map::new();
    for name in JSON_NUMBERS {
        let text = variable(name, t).unwrap_or_default();
        let n = match text.parse::<u64>() {
            Ok(n) => n.into(),
            Err(_) => text
                .parse::<f64>()
                .map_or(serde_json::Value::Null, Into::into),
        };
        m.insert(name.into(), n);
    }
    for name in JSON_TEXTS {
        let text = variable(name, t).filter(|v| !v.is_empty());
        m.insert(name.into(), text.into());
    }
    serde_json::Value::Object(m).to_string()
}

/// The body's bytes a second over the whole transfer, as curl's whole number.
fn speed(o: &x::Outcome) -> u64 {
    match o.timings.total_us {
        0 => 0,
        us => (o.body_length as f64 * 1e6 / us as f64) as u64,
    }
}

/// The response head as it came: the status line and each header, CRLF-ended.
pub(super) fn head_text(o: &x::Outcome, version: &str) -> String {
    let mut t = match o.reason.as_str() {
        "" => format!("{version} {}\r\n", o.status),
        reason => format!("{version} {} {reason}\r\n", o.status),
    };
    for h in &o.headers {
        t.push_str(&format!("{}: {}\r\n", h.name, h.value));
    }
    t.push_str("\r\n");
    t
}

/// The trailers as they came, a line each (`-i` writes them after the body).
pub(super) fn trailer_text(o: &x::Outcome) -> String {
    o.trailers
        .iter()
        .map(|h| format!("{}: {}\r\n", h.name, h.value))
        .collect()
}

/// Where a redirect that was not followed pointed, made absolute.
fn redirect_url(o: &x::Outcome) -> Option<String> {
    if !(300..400).contains(&o.status) {
        return None;
    }
    let location = o
        .headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("location"))?;
    let base = url::Url::parse(&o.final_url).ok()?;
    base.join(location.value.trim()).ok().map(String::from)
}

/// The answer's scheme in capitals, as curl prints it.
fn scheme(o: &x::Outcome) -> String {
    url::Url::parse(&o.final_url)
        .map(|u| u.scheme().to_ascii_uppercase())
        .unwrap_or_default()
}

/// The response's headers as one JSON object, names in lower case, each with its values, in
/// curl's layout (an entry a line).
fn header_json(o: Option<&x::Outcome>) -> String {
    let mut names: Vec<String> = Vec::new();
    for h in o.map(|o| o.headers.as_slice()).unwrap_or_default() {
        let lower = h.name.to_ascii_lowercase();
        if !names.contains(&lower) {
            names.push(lower);
        }
    }
    let entries: Vec<String> = names
        .iter()
        .map(|n| {
            let quoted: Vec<String> = values(o, n)
                .into_iter()
                .map(|v| serde_json::Value::from(v).to_string())
                .collect();
            format!(
                "{}:[{}]",
                serde_json::Value::from(n.as_str()),
                quoted.join(",")
            )
        })
        .collect();
    format!("{{{}\n}}", entries.join(",\n"))
}

/// The two ends of the connection: empty addresses and port 0 when no answer came.
fn address(name: &str, o: Option<&x::Outcome>) -> String {
    let Some(o) = o else {
        return if name.ends_with("port") { "0" } else { "" }.into();
    };
    let source = o.source_address.clone().unwrap_or_default();
    let (local_ip, local_port) = source.rsplit_once(':').unwrap_or((source.as_str(), ""));
    let target = url::Url::parse(&o.final_url).ok();
    match name {
        "remote_ip" => target
            .as_ref()
            .and_then(|u| u.host_str().map(|h| h.trim_matches(['[', ']']).to_string()))
            .unwrap_or_default(),
        "remote_port" => target
            .as_ref()
            .and_then(|u| u.port_or_known_default())
            .map(|p| p.to_string())
            .unwrap_or_default(),
        "local_ip" => local_ip.trim_matches(['[', ']']).to_string(),
        _ => local_port.to_string(),
    }
}
