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

/// What an answer writes: `head` to `-D`'s file or standard output, `shown` (the head with
/// `-i`, then the body unless it was held back) to the body's file or standard output. With
/// both on standard output each head line comes twice, `-D`'s first, as curl writes them.
pub(super) fn write(
    args: &ExecArgs,
    path: Option<&Path>,
    head: &str,
    include: bool,
    body: Option<&[u8]>,
) -> Result<(), String> {
    let dump = args.dump_header.as_deref();
    let dump_stdout = dump.is_some_and(|p| p.as_os_str() == "-");
    if let Some(p) = dump.filter(|_| !dump_stdout) {
        output::write_file(p, head.as_bytes())
            .map_err(|e| format!("writing {}: {e}", p.display()))?;
    }
    let mut stdout = Vec::new();
    let mut shown = Vec::new();
    for line in head.split_inclusive("\r\n") {
        if dump_stdout {
            stdout.extend_from_slice(line.as_bytes());
        }
        if include {
            let to = if path.is_none() {
                &mut stdout
            } else {
                &mut shown
            };
            to.extend_from_slice(line.as_bytes());
        }
    }
    let into = if path.is_none() {
        &mut stdout
    } else {
        &mut shown
    };
    into.extend_from_slice(body.unwrap_or_default());
    let mut out = std::io::stdout().lock();
    out.write_all(&stdout)
        .and_then(|()| out.flush())
        .map_err(|e| format!("writing standard output: {e}"))?;
    match path {
        Some(p) if include || body.is_some() => {
            output::write_file(p, &shown).map_err(|e| format!("writing {}: {e}", p.display()))
        }
        _ => Ok(()),
    }
}
