//! The bodies curl's flags build: `-d`, `--data-binary`, `--data-urlencode`, `--data-json`,
//! `-F` (multipart/form-data) and `-T`.

use super::ExecArgs;
use crate::runtime::body::{FormPart, Piece, Plan, type_of};

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
pub(super) fn body_arg(arg: &str) -> Result<Vec<u8>, String> {
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

/// `-d`, `--data-raw`, `--data-binary` and `--data-urlencode` joined with `&`, as curl joins
/// them; `None` when none is given.
pub fn data(args: &ExecArgs) -> Result<Option<Vec<u8>>, String> {
    let mut parts = Vec::new();
    for d in &args.data {
        parts.push(data_arg(d)?);
    }
    for d in &args.data_raw {
        parts.push(d.as_bytes().to_vec());
    }
    for d in &args.data_binary {
        parts.push(body_arg(d)?);
    }
    for d in &args.data_urlencode {
        parts.push(urlencode_arg(d)?);
    }
    Ok((!parts.is_empty()).then(|| parts.join(&b'&')))
}

/// `--url-query`'s parts joined with `&`: each as `--data-urlencode` makes it, or after a
/// `+` as it is; `None` when none is given.
pub fn url_query(args: &ExecArgs) -> Result<Option<String>, String> {
    let mut parts = Vec::new();
    for q in &args.url_query {
        match q.strip_prefix('+') {
            Some(raw) => parts.push(raw.to_string()),
            None => parts.push(String::from_utf8_lossy(&urlencode_arg(q)?).into_owned()),
        }
    }
    Ok((!parts.is_empty()).then(|| parts.join("&")))
}

/// Bytes the host holds as a body of the given type.
fn bytes(bytes: Vec<u8>, content_type: Option<&str>) -> Plan {
    Plan {
        pieces: vec![Piece::Bytes(bytes)],
        content_type: content_type.map(str::to_string),
    }
}

/// The body the flags give, if any (`-G` sends the data in the URL instead). Files of `-T`
/// and `-F name=@file` are streamed as they are sent (as curl reads them), not read here.
pub fn body(args: &ExecArgs, boundary: &str) -> Result<Option<Plan>, String> {
    if let Some(j) = &args.data_json {
        return Ok(Some(bytes(body_arg(j)?, Some("application/json"))));
    }
    if !args.form.is_empty() {
        let parts = args
            .form
            .iter()
            .map(|f| part(f))
            .collect::<Result<_, _>>()?;
        return Ok(Some(Plan::multipart(parts, boundary)));
    }
    if let Some(path) = &args.upload_file {
        // `-T -`: standard input, read whole (a pipe has no length to send ahead).
        if path.as_os_str() == "-" {
            return Ok(Some(bytes(body_arg("@-")?, None)));
        }
        return Ok(Some(Plan::file(path.clone())));
    }
    if args.get {
        return Ok(None);
    }
    Ok(data(args)?.map(|b| bytes(b, Some("application/x-www-form-urlencoded"))))
}

/// One `-F` part (RFC 7578): `name=text[;type=T]`, `name=<file` (its text), or
/// `name=@file[;type=T][;filename=N]` (a file part, streamed).
fn part(arg: &str) -> Result<FormPart, String> {
    let (name, spec) = arg
        .split_once('=')
        .ok_or_else(|| format!("-F wants name=content, got {arg:?}"))?;
    let name = name.to_string();
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
        std::fs::File::open(path).map_err(|e| format!("reading {path}: {e}"))?;
        return Ok(FormPart {
            name,
            content: Piece::File(path.into()),
            file: Some((filename, ctype)),
            content_type: None,
        });
    }
    let (value, ctype) = match spec.split_once(";type=") {
        Some((v, t)) => (v, Some(t.to_string())),
        None => (spec, None),
    };
    let bytes = match value.strip_prefix('<') {
        Some(path) => std::fs::read(path).map_err(|e| format!("reading {path}: {e}"))?,
        None => value.as_bytes().to_vec(),
    };
    Ok(FormPart {
        name,
        content: Piece::Bytes(bytes),
        file: None,
        content_type: ctype,
    })
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
        let p = part(&format!("doc=@{}", f.display())).unwrap();
        assert_eq!(p.file, Some(("r.txt".into(), "text/plain".into())));
        assert_eq!(p.content, Piece::File(f.clone()));
        let p = part(&format!("doc=@{};type=a/b;filename=x.bin", f.display())).unwrap();
        assert_eq!(p.file, Some(("x.bin".into(), "a/b".into())));
        let p = part(&format!("t=<{}", f.display())).unwrap();
        assert_eq!(p.content, Piece::Bytes(b"hello".to_vec()));
        assert!(part("novalue").is_err());
        assert!(part("f=@/nonexistent/file").is_err());
    }
}
