//! Static files for routes with a `dir`: the rest of the path (after the route's `*`) names a
//! file under the directory the host preopened; Content-Type by extension, Last-Modified and
//! 304 for If-Modified-Since, one byte range (206, 416), `index.html` for a directory path.
//! The file system itself is the caller's (`Files`): wasi:filesystem in the component, std in
//! tests.

use alloc::string::{String, ToString};
use alloc::vec::Vec;

use http_core::date::{format_http_date, parse_http_date};

use crate::request::Request;
use crate::response::Answer;

/// A file's size and last change (Unix seconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileMeta {
    pub size: u64,
    pub modified: u64,
    pub is_dir: bool,
}

/// Where files come from: `dir` is the route's (a preopened directory's name), `rel` a
/// relative path checked to stay inside it. Errors are HTTP statuses (404, 403, 500).
pub trait Files {
    fn stat(&mut self, dir: &str, rel: &str) -> Result<FileMeta, u16>;
    fn read(&mut self, dir: &str, rel: &str, offset: u64, len: u64) -> Result<Vec<u8>, u16>;
}

/// No file system: every file is missing.
pub struct NoFiles;

impl Files for NoFiles {
    fn stat(&mut self, _: &str, _: &str) -> Result<FileMeta, u16> {
        Err(404)
    }
    fn read(&mut self, _: &str, _: &str, _: u64, _: u64) -> Result<Vec<u8>, u16> {
        Err(404)
    }
}

/// A file served whole or in part at most this large (the answer is held in memory).
pub const MAX_FILE: u64 = 64 * 1024 * 1024;

/// The relative path for `rest` (percent-decoded already): segments joined, `.` dropped; `None`
/// for `..`, a NUL or a backslash (nothing may leave the directory).
pub fn relative(rest: &str) -> Option<String> {
    let mut parts = Vec::new();
    for seg in rest.split('/') {
        match seg {
            "" | "." => {}
            ".." => return None,
            s if s.contains(['\0', '\\']) => return None,
            s => parts.push(s),
        }
    }
    let mut rel = parts.join("/");
    if rest.is_empty() || rest.ends_with('/') {
        if !rel.is_empty() {
            rel.push('/');
        }
        rel.push_str("index.html");
    }
    Some(rel)
}

/// The Content-Type for a file name, by its extension.
pub fn content_type(name: &str) -> &'static str {
    let ext = name.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase());
    match ext.as_deref() {
        Some("html" | "htm") => "text/html; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("json") => "application/json",
        Some("txt") => "text/plain; charset=utf-8",
        Some("xml") => "application/xml",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("jpg" | "jpeg") => "image/jpeg",
        Some("gif") => "image/gif",
        Some("webp") => "image/webp",
        Some("ico") => "image/x-icon",
        Some("wasm") => "application/wasm",
        Some("pdf") => "application/pdf",
        Some("woff2") => "font/woff2",
        _ => "application/octet-stream",
    }
}

/// One range of `bytes=A-B`, `bytes=A-` or `bytes=-N` within `size`: `Ok(None)` to send the
/// whole (no Range, several ranges, another unit), `Err(())` when it cannot be satisfied.
fn range(header: Option<&str>, size: u64) -> Result<Option<(u64, u64)>, ()> {
    let Some(spec) = header.and_then(|h| h.trim().strip_prefix("bytes=")) else {
        return Ok(None);
    };
    if spec.contains(',') {
        return Ok(None);
    }
    let (a, b) = spec.split_once('-').ok_or(())?;
    let num = |s: &str| s.trim().parse::<u64>().map_err(|_| ());
    let (first, last) = match (a.trim().is_empty(), b.trim().is_empty()) {
        (true, false) => {
            let n = num(b)?.min(size);
            (size - n, size.checked_sub(1).ok_or(())?)
        }
        (false, true) => (num(a)?, size.saturating_sub(1)),
        (false, false) => (num(a)?, num(b)?.min(size.saturating_sub(1))),
        (true, true) => return Err(()),
    };
    if first >= size || first > last {
        return Err(());
    }
    Ok(Some((first, last)))
}

/// The answer to a GET or HEAD of `rest` under `dir`.
pub fn answer(req: &Request, dir: &str, rest: &str, files: &mut dyn Files) -> Answer {
    if req.method != "GET" && req.method != "HEAD" {
        let mut a = Answer::text(405, "method not allowed");
        a.headers.push(("Allow".into(), "GET, HEAD".into()));
        return a;
    }
    let Some(rel) = relative(rest) else {
        return Answer::text(404, "not found");
    };
    let meta = match files.stat(dir, &rel) {
        Ok(m) if !m.is_dir => m,
        Ok(_) => return Answer::text(404, "not found"),
        Err(s) => return Answer::text(s, "not found"),
    };
    let modified = format_http_date(meta.modified);
    if let Some(since) = req.header("if-modified-since").and_then(parse_http_date)
        && meta.modified <= since
    {
        let mut a = Answer::new(304, Vec::new());
        a.headers.push(("Last-Modified".into(), modified));
        return a;
    }
    let (status, first, last) = match range(req.header("range"), meta.size) {
        Ok(None) => (200, 0, meta.size.saturating_sub(1)),
        Ok(Some((a, b))) => (206, a, b),
        Err(()) => {
            let mut a = Answer::text(416, "range not satisfiable");
            a.headers.push((
                "Content-Range".into(),
                alloc::format!("bytes */{}", meta.size),
            ));
            return a;
        }
    };
    let len = if meta.size == 0 { 0 } else { last - first + 1 };
    if len > MAX_FILE {
        return Answer::text(500, "file over the server's 64 MiB limit for one answer");
    }
    let body = match files.read(dir, &rel, first, len) {
        Ok(b) if b.len() as u64 == len => b,
        Ok(_) => return Answer::text(500, "the file changed while it was read"),
        Err(s) => return Answer::text(s, "cannot read the file"),
    };
    let mut a = Answer::new(status, body);
    a.headers
        .push(("Content-Type".into(), content_type(&rel).to_string()));
    a.headers.push(("Last-Modified".into(), modified));
    a.headers.push(("Accept-Ranges".into(), "bytes".into()));
    if status == 206 {
        a.headers.push((
            "Content-Range".into(),
            alloc::format!("bytes {first}-{last}/{}", meta.size),
        ));
    }
    a
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Seek, SeekFrom};

    /// The real file system under a directory.
    struct Disk(std::path::PathBuf);

    impl Files for Disk {
        fn stat(&mut self, _: &str, rel: &str) -> Result<FileMeta, u16> {
            let m = std::fs::metadata(self.0.join(rel)).map_err(|_| 404u16)?;
            let modified = m
                .modified()
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_secs());
            Ok(FileMeta {
                size: m.len(),
                modified,
                is_dir: m.is_dir(),
            })
        }
        fn read(&mut self, _: &str, rel: &str, offset: u64, len: u64) -> Result<Vec<u8>, u16> {
            let mut f = std::fs::File::open(self.0.join(rel)).map_err(|_| 404u16)?;
            f.seek(SeekFrom::Start(offset)).map_err(|_| 500u16)?;
            let mut out = vec![0; len as usize];
            f.read_exact(&mut out).map_err(|_| 500u16)?;
            Ok(out)
        }
    }

    fn get(path: &str, headers: &[(&str, &str)]) -> Request {
        Request {
            method: "GET".into(),
            path: path.into(),
            query: String::new(),
            version: 1,
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            body: Vec::new(),
        }
    }

    #[test]
    fn files_ranges_and_not_modified() {
        let d = std::env::temp_dir().join(alloc::format!("files-test-{}", std::process::id()));
        std::fs::create_dir_all(d.join("sub")).unwrap();
        std::fs::write(d.join("a.css"), b"0123456789").unwrap();
        std::fs::write(d.join("sub/index.html"), b"<p>hi</p>").unwrap();
        let mut disk = Disk(d.clone());
        let a = answer(&get("/", &[]), "x", "a.css", &mut disk);
        assert_eq!((a.status, &a.body[..]), (200, &b"0123456789"[..]));
        assert!(
            a.headers
                .contains(&("Content-Type".into(), "text/css; charset=utf-8".into()))
        );
        let a = answer(
            &get("/", &[("Range", "bytes=2-4")]),
            "x",
            "a.css",
            &mut disk,
        );
        assert_eq!((a.status, &a.body[..]), (206, &b"234"[..]));
        assert!(
            a.headers
                .contains(&("Content-Range".into(), "bytes 2-4/10".into()))
        );
        let a = answer(&get("/", &[("Range", "bytes=-3")]), "x", "a.css", &mut disk);
        assert_eq!(&a.body[..], b"789");
        let a = answer(
            &get("/", &[("Range", "bytes=20-")]),
            "x",
            "a.css",
            &mut disk,
        );
        assert_eq!(a.status, 416);
        let lm = a
            .headers
            .iter()
            .find(|h| h.0 == "Content-Range")
            .unwrap()
            .1
            .clone();
        assert_eq!(lm, "bytes */10");
        let a = answer(&get("/", &[]), "x", "a.css", &mut disk);
        let lm = a
            .headers
            .iter()
            .find(|h| h.0 == "Last-Modified")
            .unwrap()
            .1
            .clone();
        assert_eq!(
            answer(
                &get("/", &[("If-Modified-Since", &lm)]),
                "x",
                "a.css",
                &mut disk
            )
            .status,
            304
        );
        assert_eq!(
            answer(&get("/", &[]), "x", "sub/", &mut disk).body,
            b"<p>hi</p>"
        );
        assert_eq!(answer(&get("/", &[]), "x", "sub", &mut disk).status, 404);
        assert_eq!(
            answer(&get("/", &[]), "x", "../etc/passwd", &mut disk).status,
            404
        );
        assert_eq!(
            answer(&get("/", &[]), "x", "none.txt", &mut disk).status,
            404
        );
        let _ = std::fs::remove_dir_all(&d);
    }
}
