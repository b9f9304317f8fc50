//! Where `exec` writes an answer, as curl: the body and the head `-i` adds to standard output
//! or to `-o`/`-O`'s file (in `--output-dir`, made with `--create-dirs`), the head `-D` dumps
//! to its file or to standard output.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use super::ExecArgs;
use crate::results::output;

/// The file the body goes to: `-o FILE` (`-`: standard output), or with `-O` the URL's last
/// path segment, its query left out; in `--output-dir` when given. An error is curl's exit 23.
pub(super) fn body_path(args: &ExecArgs, url: &str) -> Result<Option<PathBuf>, String> {
    let name = match (&args.output, args.remote_name) {
        (Some(p), _) if p.as_os_str() == "-" => return Ok(None),
        (Some(p), _) => p.clone(),
        (None, true) => PathBuf::from(remote_name(url)?),
        (None, false) => return Ok(None),
    };
    let path = match &args.output_dir {
        Some(dir) if name.is_relative() => dir.join(name),
        _ => name,
    };
    if args.create_dirs
        && let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty())
    {
        std::fs::create_dir_all(parent)
            .map_err(|e| format!("creating {}: {e}", parent.display()))?;
    }
    Ok(Some(path))
}

/// `-O`'s file name: the URL path's last segment, as the URL spells it.
fn remote_name(url: &str) -> Result<String, String> {
    let name = url::Url::parse(url)
        .ok()
        .and_then(|u| Some(u.path_segments()?.next_back()?.to_string()))
        .unwrap_or_default();
    match name.is_empty() {
        true => Err(format!("{url}: the remote file name has no length (-O)")),
        false => Ok(name),
    }
}

/// What an answer is made of, as `exec` writes it: the head, the body (unless held back) and
/// the trailers' lines.
pub(super) struct Parts<'a> {
    pub head: &'a str,
    pub body: Option<&'a [u8]>,
    pub trailers: &'a str,
}

/// What an answer writes: the head and trailers to `-D`'s file or standard output; the head
/// with `-i` (`include`), the body and the trailers with `-i` to the body's file or standard
/// output. With both on standard output each head line comes twice, `-D`'s first, as curl
/// writes them.
pub(super) fn write(
    args: &ExecArgs,
    path: Option<&Path>,
    parts: &Parts<'_>,
    include: bool,
) -> Result<(), String> {
    let dump = args.dump_header.as_deref();
    let dump_stdout = dump.is_some_and(|p| p.as_os_str() == "-");
    if let Some(p) = dump.filter(|_| !dump_stdout) {
        write_file(p, format!("{}{}", parts.head, parts.trailers).as_bytes())?;
    }
    let mut to = Streams {
        stdout: Vec::new(),
        shown: Vec::new(),
        to_file: path.is_some(),
    };
    to.lines(parts.head, dump_stdout, include);
    to.shown().extend_from_slice(parts.body.unwrap_or_default());
    to.lines(parts.trailers, dump_stdout, include);
    let mut out = std::io::stdout().lock();
    out.write_all(&to.stdout)
        .and_then(|()| out.flush())
        .map_err(|e| format!("writing standard output: {e}"))?;
    match path {
        Some(p) if include || parts.body.is_some() => write_file(p, &to.shown),
        _ => Ok(()),
    }
}

/// `bytes` written whole to `path`, or what went wrong.
fn write_file(path: &Path, bytes: &[u8]) -> Result<(), String> {
    output::write_file(path, bytes).map_err(|e| format!("writing {}: {e}", path.display()))
}

/// Standard output's bytes, and the body file's when there is one.
struct Streams {
    stdout: Vec<u8>,
    shown: Vec<u8>,
    to_file: bool,
}

impl Streams {
    /// Where the body goes.
    fn shown(&mut self) -> &mut Vec<u8> {
        match self.to_file {
            true => &mut self.shown,
            false => &mut self.stdout,
        }
    }

    /// Head or trailer lines: to standard output for `-D -`, where the body goes for `-i`.
    fn lines(&mut self, text: &str, dump_stdout: bool, include: bool) {
        for line in text.split_inclusive("\r\n") {
            if dump_stdout {
                self.stdout.extend_from_slice(line.as_bytes());
            }
            if include {
                self.shown().extend_from_slice(line.as_bytes());
            }
        }
    }
}
