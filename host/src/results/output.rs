//! Output files and standard streams that lose nothing: every file is written to a temporary
//! file in its own directory, synced and renamed over the target (a reader sees the old file
//! or the whole new one, never a torn one: not on SIGKILL, not on a full disk), every output
//! path is checked before the first request, and a closed stdout or stderr costs nothing but
//! the text that could not be shown (the crate's print macros, in `main.rs`).

use std::io::Write;
use std::path::{Path, PathBuf};

/// The directory a path's file goes in (`.` for a bare name).
fn dir_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// A new hidden file beside `path` (created exclusively: no link is followed) that becomes
/// `path` when persisted, readable as output files usually are (0644).
pub fn temp_beside(path: &Path) -> std::io::Result<tempfile::NamedTempFile> {
    temp_with_mode(path, 0o644)
}

fn temp_with_mode(path: &Path, mode: u32) -> std::io::Result<tempfile::NamedTempFile> {
    use std::os::unix::fs::PermissionsExt;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "output".into());
    let tmp = tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(".partial")
        .tempfile_in(dir_of(path))?;
    tmp.as_file()
        .set_permissions(std::fs::Permissions::from_mode(mode))?;
    Ok(tmp)
}

/// Make a temporary file `path`: synced, renamed over it, and its directory synced. On any
/// failure the temporary file is removed and `path` is as it was.
pub fn persist(tmp: tempfile::NamedTempFile, path: &Path) -> std::io::Result<()> {
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    std::fs::File::open(dir_of(path))?.sync_all()
}

/// Whether `path` is something other than a regular file (`/dev/null`, `/dev/stdout`, a
/// FIFO, a terminal) or a link to one: written in place, through the link, never replaced by
/// a rename.
fn is_special(path: &Path) -> bool {
    let link = std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink());
    link || std::fs::metadata(path).is_ok_and(|m| !m.is_file() && !m.is_dir())
}

/// Where a stream goes as the run goes: a temporary file beside its path, renamed over it at
/// the end; or, for a device, FIFO or link, the path itself.
pub enum Sink {
    Temp(tempfile::NamedTempFile, PathBuf),
    Direct(std::fs::File),
}

impl Sink {
    pub fn open(path: &Path) -> std::io::Result<Sink> {
        if is_special(path) {
            let f = std::fs::OpenOptions::new().write(true).open(path)?;
            return Ok(Sink::Direct(f));
        }
        Ok(Sink::Temp(temp_beside(path)?, path.to_path_buf()))
    }

    /// The stream whole at its path.
    pub fn finish(self) -> std::io::Result<()> {
        match self {
            Sink::Temp(tmp, path) => persist(tmp, &path),
            Sink::Direct(mut f) => f.flush(),
        }
    }
}

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Sink::Temp(t, _) => t.write(buf),
            Sink::Direct(f) => f.write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Sink::Temp(t, _) => t.flush(),
            Sink::Direct(f) => f.flush(),
        }
    }
}

/// Write `bytes` to `path` whole, or not at all (a regular file); a device or FIFO is written
/// in place.
pub fn write_file(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    if is_special(path) {
        let mut f = std::fs::OpenOptions::new().write(true).open(path)?;
        return f.write_all(bytes);
    }
    replace_whole(path, bytes, 0o644)
}

/// `path` replaced by `bytes` whole (a temporary file beside it with `mode`, synced, renamed,
/// the directory synced); on failure the temporary file goes and `path` is as it was.
pub fn replace_whole(path: &Path, bytes: &[u8], mode: u32) -> std::io::Result<()> {
    let mut tmp = temp_with_mode(path, mode)?;
    tmp.write_all(bytes)?;
    tmp.flush()?;
    persist(tmp, path)
}

/// Whether `path` can take an output file: its directory exists and takes a new file, and
/// it is not a directory itself. Checked before a run sends anything.
pub fn check_writable(flag: &str, path: &Path) -> Result<(), String> {
    let shown = path.display();
    if is_special(path) {
        return std::fs::OpenOptions::new()
            .write(true)
            .open(path)
            .map(drop)
            .map_err(|e| format!("{flag} {shown}: {e}"));
    }
    if path.is_dir() {
        return Err(format!("{flag} {shown}: is a directory"));
    }
    let dir = dir_of(path);
    if !dir.is_dir() {
        return Err(format!("{flag} {shown}: no directory {}", dir.display()));
    }
    temp_beside(path)
        .map(drop)
        .map_err(|e| format!("{flag} {shown}: cannot write in {}: {e}", dir.display()))
}
