//! The bodies curl's flags build: `-d`, `--data-binary`, `--data-urlencode`, `--data-json`,
//! `-F` (multipart/form-data) and `-T`.

use super::ExecArgs;

/// A request body and the Content-Type it goes with (unless `-H` names one).
pub struct Body {
    pub bytes: Vec<u8>,
    pub content_type: Option<String>,
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

/// A body argument: the text itself, or `@FILE`'s bytes (`@-`: standard input).
fn body_arg(arg: &str) -> Result<Vec<u8>, String> {
    match arg.strip_prefix('@') {
        Some("-") => {
            let mut b = Vec::new();
            std::io::Read::read_to_end(&mut std::io::stdin(), &mut b)
                .map_err(|e| format!("reading standard input: {e}"))?;
            Ok(b)
        }
        Some(path) => std::fs::read(path).map_err(|e| format!("reading {path}: {e}")),
        None => Ok(arg.as_bytes().to_vec()),
    }
}

/// Form encoding as curl's `--data-urlencode` does it: a space is `+`, all else but letters,
/// digits and `-._~` percent-encoded.
pub fn urlencode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 3);
    for b in bytes {
        if *b == b' ' {
            out.push('+');
        } else if b.is_ascii_alphanumeric() || b"-._~".contains(b) {
            out.push(*b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// One `--data-urlencode`: `content`, `=content`, `name=content`, `@file` or `name@file`.
fn urlencode_arg(arg: &str) -> Result<Vec<u8>, String> {
    let eq = arg.find('=');
    let at = arg.find('@');
    let (name, value) = match (eq, at) {
        (Some(e), Some(a)) if a < e => (&arg[..a], body_arg(&arg[a..])?),
        (Some(e), _) => (&arg[..e], arg.as_bytes()[e + 1..].to_vec()),
        (None, Some(a)) => (&arg[..a], body_arg(&arg[a..])?),
        (None, None) => ("", arg.as_bytes().to_vec()),
    };
    let encoded = urlencode(&value);
    Ok(if name.is_empty() {
        encoded.into_bytes()
    } else {
        format!("{name}={encoded}").into_bytes()
    })
}

/// `-d`, `--data-binary` and `--data-urlencode` joined with `&`, as curl joins them; `None`
/// when none is given.
pub fn data(args: &ExecArgs) -> Result<Option<Vec<u8>>, String> {
    let mut parts = Vec::new();
    for d in &args.data {
        parts.push(data_arg(d)?);
    }
    for d in &args.data_binary {
        parts.push(body_arg(d)?);
    }
    for d in &args.data_urlencode {
        parts.push(urlencode_arg(d)?);
    }
    Ok((!parts.is_empty()).then(|| parts.join(&b'&')))
}

/// The body the flags give, if any (`-G` sends the data in the URL instead).
pub fn body(args: &ExecArgs, boundary: &str) -> Result<Option<Body>, String> {
    if let Some(j) = &args.data_json {
        let bytes = body_arg(j)?;
        return Ok(Some(Body {
            bytes,
            content_type: Some("application/json".into()),
        }));
    }
    if !args.form.is_empty() {
        return multipart(&args.form, boundary).map(Some);
    }
    if let Some(path) = &args.upload_file {
        let bytes = std::fs::read(path).map_err(|e| format!("reading {}: {e}", path.display()))?;
        return Ok(Some(Body {
            bytes,
            content_type: None,
        }));
    }
    if args.get {
        return Ok(None);
    }
    Ok(data(args)?.map(|bytes| Body {
        bytes,
        content_type: Some("application/x-www-form-urlencoded".into()),
    }))
}

/// curl's guess of a file part's type from its extension.
fn type_of(filename: &str) -> &'static str {
    let ext = filename
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase());
    match ext.as_deref() {
        Some("gif") => "image/gif",
        Some("jpg" | "jpeg") => "image/jpeg",
        Some("png") => "image/png",
        Some("svg") => "image/svg+xml",
        Some("txt") => "text/plain",
        Some("htm" | "html") => "text/html",
        Some("pdf") => "application/pdf",
        Some("xml") => "application/xml",
        _ => "application/octet-stream",
    }
}

/// One `-F` part: its headers and content.
fn part(arg: &str) -> Result<(String, Vec<u8>), String> {
    let (name, spec) = arg
        .split_once('=')
        .ok_or_else(|| format!("-F wants name=content, got {arg:?}"))?;
    let quoted = |s: &str| s.replace('\\', "\\\\").replace('"', "\\\"");
    let mut head = format!("Content-Disposition: form-data; name=\"{}\"", quoted(name));
    if let Some(rest) = spec.strip_prefix('@') {
        let mut fields = rest.split(';');
        let path = fields.next().unwrap_or_default();
        let mut filename = std::path::Path::new(path)
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default();
        let mut ctype = type_of(&filename).to_string();
        for f in fields {
            match f.trim().split_once('=') {
                Some(("type", t)) => ctype = t.to_string(),
                Some(("filename", n)) => filename = n.trim_matches('"').to_string(),
                _ => {
                    return Err(format!(
                        "-F {arg:?}: unknown field {f:?} (type=, filename=)"
                    ));
                }
            }
        }
        let bytes = std::fs::read(path).map_err(|e| format!("reading {path}: {e}"))?;
        head.push_str(&format!(
            "; filename=\"{}\"\r\nContent-Type: {ctype}",
            quoted(&filename)
        ));
        return Ok((head, bytes));
    }
    let (value, ctype) = match spec.split_once(";type=") {
        Some((v, t)) => (v, Some(t)),
        None => (spec, None),
    };
    let bytes = match value.strip_prefix('<') {
        Some(path) => std::fs::read(path).map_err(|e| format!("reading {path}: {e}"))?,
        None => value.as_bytes().to_vec(),
    };
    if let Some(t) = ctype {
        head.push_str(&format!("\r\nContent-Type: {t}"));
    }
    Ok((head, bytes))
}

/// `-F` fields as a multipart/form-data body (RFC 7578).
fn multipart(fields: &[String], boundary: &str) -> Result<Body, String> {
    let mut bytes = Vec::new();
    for f in fields {
        let (head, content) = part(f)?;
        bytes.extend_from_slice(format!("--{boundary}\r\n{head}\r\n\r\n").as_bytes());
        bytes.extend_from_slice(&content);
        bytes.extend_from_slice(b"\r\n");
    }
    bytes.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    Ok(Body {
        bytes,
        content_type: Some(format!("multipart/form-data; boundary={boundary}")),
    })
}

/// A boundary no part is likely to hold: curl's shape, 24 dashes and 22 random characters.
pub fn boundary() -> String {
    let mut seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
        ^ u64::from(std::process::id()).rotate_left(32);
    let mut out = "-".repeat(24);
    for _ in 0..22 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        out.push(b"0123456789abcdefghijklmnopqrstuvwxyz"[(seed % 36) as usize] as char);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urlencoded_as_curl() {
        assert_eq!(urlencode("a b&c=d/é~".as_bytes()), "a+b%26c%3Dd%2F%C3%A9~");
        assert_eq!(urlencode_arg("name=a b").unwrap(), b"name=a+b");
        assert_eq!(urlencode_arg("=a=b").unwrap(), b"a%3Db");
        assert_eq!(urlencode_arg("plain text").unwrap(), b"plain+text");
    }

    #[test]
    fn form_parts_name_their_files() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("r.txt");
        std::fs::write(&f, b"hello").unwrap();
        let (head, body) = part(&format!("doc=@{}", f.display())).unwrap();
        assert_eq!(
            head,
            "Content-Disposition: form-data; name=\"doc\"; filename=\"r.txt\"\r\nContent-Type: text/plain"
        );
        assert_eq!(body, b"hello");
        let (head, _) = part(&format!("doc=@{};type=a/b;filename=x.bin", f.display())).unwrap();
        assert!(
            head.ends_with("filename=\"x.bin\"\r\nContent-Type: a/b"),
            "{head}"
        );
        assert_eq!(part(&format!("t=<{}", f.display())).unwrap().1, b"hello");
        assert!(part("novalue").is_err());
        assert!(part("f=@/nonexistent/file").is_err());
    }
}
