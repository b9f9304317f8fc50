//! Request bodies streamed to an instance from the host's files (`body_file`, a `form`'s file
//! parts, `exec -T` and `-F name=@file`): each is a wasi:io `input-stream` the instance reads
//! 64 KiB at a time while it sends, so a 50 MiB upload costs no user 50 MiB.

use std::fs::File;
use std::io::Read;
use std::path::PathBuf;

use bytes::Bytes;
use wasmtime_wasi::p2::{InputStream, Pollable, StreamError, StreamResult};

/// A piece of a body: bytes the host holds (a form's headings and text fields), or a file
/// read when the body is sent.
#[derive(Debug, Clone, PartialEq)]
pub enum Piece {
    Bytes(Vec<u8>),
    File(PathBuf),
}

/// A body made of pieces, and its Content-Type (unless the request names one).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Plan {
    pub pieces: Vec<Piece>,
    pub content_type: Option<String>,
}

/// One part of a multipart/form-data body (RFC 7578).
pub struct FormPart {
    pub name: String,
    pub content: Piece,
    /// For a file part: the file name sent and its type.
    pub file: Option<(String, String)>,
    /// The type of a text part, if it names one.
    pub content_type: Option<String>,
}

/// A header parameter's quoted text (backslash and quote escaped, as curl sends them).
fn quoted(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

impl Plan {
    /// A file's exact bytes.
    pub fn file(path: PathBuf) -> Plan {
        Plan {
            pieces: vec![Piece::File(path)],
            content_type: None,
        }
    }

    /// A multipart/form-data body of `parts` between `boundary` lines.
    pub fn multipart(parts: Vec<FormPart>, boundary: &str) -> Plan {
        let mut pieces = Vec::new();
        for p in parts {
            let mut head = format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{}\"",
                quoted(&p.name)
            );
            if let Some((filename, ctype)) = &p.file {
                head.push_str(&format!(
                    "; filename=\"{}\"\r\nContent-Type: {ctype}",
                    quoted(filename)
                ));
            } else if let Some(t) = &p.content_type {
                head.push_str(&format!("\r\nContent-Type: {t}"));
            }
            head.push_str("\r\n\r\n");
            pieces.push(Piece::Bytes(head.into_bytes()));
            pieces.push(p.content);
            pieces.push(Piece::Bytes(b"\r\n".to_vec()));
        }
        pieces.push(Piece::Bytes(format!("--{boundary}--\r\n").into_bytes()));
        Plan {
            pieces: merge_bytes(pieces),
            content_type: Some(format!("multipart/form-data; boundary={boundary}")),
        }
    }

    /// Open the files (their sizes now are what is sent): the stream to give an instance.
    pub fn open(&self) -> Result<Opened, String> {
        let mut open = Vec::with_capacity(self.pieces.len());
        let mut len = 0u64;
        for p in &self.pieces {
            let o = match p {
                Piece::Bytes(b) => Open::Bytes(Bytes::from(b.clone())),
                Piece::File(path) => {
                    let f = File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
                    let meta = f
                        .metadata()
                        .map_err(|e| format!("{}: {e}", path.display()))?;
                    if !meta.is_file() {
                        return Err(format!("{}: not a regular file", path.display()));
                    }
                    Open::File(f, meta.len(), path.clone())
                }
            };
            len += o.left();
            open.push(o);
        }
        open.reverse();
        Ok(Opened { open, len })
    }
}

/// curl's guess of a file part's type from its extension.
pub fn type_of(filename: &str) -> &'static str {
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

/// Neighbouring byte pieces as one.
fn merge_bytes(pieces: Vec<Piece>) -> Vec<Piece> {
    let mut out: Vec<Piece> = Vec::with_capacity(pieces.len());
    for p in pieces {
        match (out.last_mut(), p) {
            (Some(Piece::Bytes(a)), Piece::Bytes(b)) => a.extend_from_slice(&b),
            (_, p) => out.push(p),
        }
    }
    out
}

enum Open {
    Bytes(Bytes),
    /// The file, the bytes of it left to send, and its path (for errors).
    File(File, u64, PathBuf),
}

impl Open {
    fn left(&self) -> u64 {
        match self {
            Open::Bytes(b) => b.len() as u64,
            Open::File(_, left, _) => *left,
        }
    }
}

/// An opened body: the pieces left (last first) and the total length.
pub struct Opened {
    open: Vec<Open>,
    len: u64,
}

impl Opened {
    /// The bytes the body has (its Content-Length).
    pub fn length(&self) -> u64 {
        self.len
    }

    /// Up to `size` bytes of the current piece.
    fn next(&mut self, size: usize) -> StreamResult<Bytes> {
        loop {
            let Some(piece) = self.open.last_mut() else {
                return Err(StreamError::Closed);
            };
            if piece.left() == 0 {
                self.open.pop();
                continue;
            }
            return match piece {
                Open::Bytes(b) => Ok(b.split_to(size.min(b.len()))),
                Open::File(f, left, path) => {
                    let mut buf = vec![0u8; size.min(*left as usize).min(64 * 1024)];
                    let n = f.read(&mut buf).map_err(|e| {
                        StreamError::LastOperationFailed(wasmtime::Error::msg(format!(
                            "{}: {e}",
                            path.display()
                        )))
                    })?;
                    if n == 0 {
                        let msg = format!("{}: the file shrank while it was sent", path.display());
                        return Err(StreamError::LastOperationFailed(wasmtime::Error::msg(msg)));
                    }
                    *left -= n as u64;
                    buf.truncate(n);
                    Ok(Bytes::from(buf))
                }
            };
        }
    }
}

#[async_trait::async_trait]
impl Pollable for Opened {
    /// A file is always ready.
    async fn ready(&mut self) {}
}

impl InputStream for Opened {
    fn read(&mut self, size: usize) -> StreamResult<Bytes> {
        if size == 0 {
            return Ok(Bytes::new());
        }
        self.next(size)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain(mut o: Opened, chunk: usize) -> Vec<u8> {
        let mut out = Vec::new();
        loop {
            match o.read(chunk) {
                Ok(b) => out.extend_from_slice(&b),
                Err(StreamError::Closed) => return out,
                Err(e) => panic!("{e}"),
            }
        }
    }

    #[test]
    fn a_form_streams_its_parts_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("a.bin");
        std::fs::write(&f, vec![7u8; 100_000]).unwrap();
        let plan = Plan::multipart(
            vec![
                FormPart {
                    name: "who".into(),
                    content: Piece::Bytes(b"ann".to_vec()),
                    file: None,
                    content_type: None,
                },
                FormPart {
                    name: "up".into(),
                    content: Piece::File(f),
                    file: Some(("a \"b\".bin".into(), "application/octet-stream".into())),
                    content_type: None,
                },
            ],
            "XyZ",
        );
        let o = plan.open().unwrap();
        let len = o.length();
        let bytes = drain(o, 1000);
        assert_eq!(bytes.len() as u64, len);
        let head = "--XyZ\r\nContent-Disposition: form-data; name=\"who\"\r\n\r\nann\r\n--XyZ\r\n\
                    Content-Disposition: form-data; name=\"up\"; filename=\"a \\\"b\\\".bin\"\r\n\
                    Content-Type: application/octet-stream\r\n\r\n";
        assert!(bytes.starts_with(head.as_bytes()));
        assert_eq!(
            &bytes[head.len()..head.len() + 100_000],
            &vec![7u8; 100_000][..]
        );
        assert!(bytes.ends_with(b"\r\n--XyZ--\r\n"));
        assert_eq!(
            plan.content_type.as_deref(),
            Some("multipart/form-data; boundary=XyZ")
        );
    }

    #[test]
    fn a_missing_file_or_a_directory_is_refused_at_open() {
        let dir = tempfile::tempdir().unwrap();
        assert!(Plan::file(dir.path().join("none")).open().is_err());
        let e = Plan::file(dir.path().to_path_buf()).open().err().unwrap();
        assert!(e.contains("not a regular file"), "{e}");
    }

    #[test]
    fn a_file_that_shrinks_fails_the_stream() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("s");
        std::fs::write(&f, vec![1u8; 1000]).unwrap();
        let mut o = Plan::file(f.clone()).open().unwrap();
        std::fs::write(&f, vec![1u8; 10]).unwrap();
        assert_eq!(o.read(100).unwrap().len(), 10);
        assert!(matches!(
            o.read(100),
            Err(StreamError::LastOperationFailed(_))
        ));
    }
}
