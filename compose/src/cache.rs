//! Compiled artifacts kept on disk, so that only a process's first run of an artifact pays
//! Cranelift for it: compiling `scheduler-executor.wasm` is about 1.5 s of CPU (0.8 s on two
//! cores), which every `scheduler exec` paid for a request curl makes in milliseconds.
//!
//! An entry is wasmtime's own serialized form (`Engine::precompile_component`), named by a
//! SHA-256 of everything its code depends on: the artifact's bytes, the engine's compile
//! settings (`Engine::precompile_compatibility_hash`: target, CPU features, tunables, wasm
//! features, wasmtime's version) and the patches to wasmtime built into this binary (they
//! change the code of adapters without changing wasmtime's version). The file holds a SHA-256
//! of its contents first, so a torn or damaged file is compiled again, not loaded; an entry
//! another user could have written (not ours, or writable by others) is never loaded.
//! wasmtime's own `cache` feature was not taken: it brings a C build (zstd), reads wasmtime's
//! user configuration file and runs a worker thread in every process.
//!
//! Anything wrong with the cache (no home, a full disk, a read-only directory) costs only the
//! compile: the run goes on with the compiled code and leaves no partial file behind.

use std::fs;
use std::hash::Hasher;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use ring::digest::{Context, SHA256, digest};
use wasmtime::Engine;
use wasmtime::component::Component;

/// Entries kept in a cache directory, the most recently used first; older ones are removed
/// when a new one is written (each is a few MB).
pub const KEPT: usize = 16;

/// A temporary file this old was left by a process that died while writing it.
const STALE_TEMP: Duration = Duration::from_secs(3600);

/// No entry is larger (the executor's is about 2.3 MB); a larger file is not read.
const MAX_ENTRY: u64 = 256 << 20;

/// How long a process waits for another compiling the same entry before compiling it itself
/// (a compile takes about 1.5 s of CPU).
const LOCK_WAIT: Duration = Duration::from_secs(60);

/// The patches to wasmtime built into this binary (vendor/README.md).
const PATCHES: [&[u8]; 2] = [
    include_bytes!("../../vendor/wasmtime.patch"),
    include_bytes!("../../vendor/wasmtime-environ.patch"),
];

/// Where a component's compiled code came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    Compiled,
    Cached,
}

/// `bytes` compiled for `engine`, from the cache directory (`dir()`) when it holds them.
pub fn component(engine: &Engine, bytes: &[u8]) -> wasmtime::Result<Component> {
    component_in(engine, bytes, dir().as_deref()).map(|(component, _)| component)
}

/// The cache directory: `SCHEDULER_CACHE_DIR` (empty: no cache), else
/// `$XDG_CACHE_HOME/scheduler`, else `$HOME/.cache/scheduler`.
pub fn dir() -> Option<PathBuf> {
    let var = |name| std::env::var_os(name).filter(|v| !v.is_empty());
    if let Some(dir) = std::env::var_os("SCHEDULER_CACHE_DIR") {
        return (!dir.is_empty()).then(|| PathBuf::from(dir));
    }
    // A relative XDG_CACHE_HOME is to be ignored (the XDG base directory specification).
    let xdg = var("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute());
    let base = xdg.or_else(|| var("HOME").map(|home| Path::new(&home).join(".cache")))?;
    Some(base.join("scheduler"))
}

/// `bytes` compiled for `engine`, read from `dir` when an entry there is whole and ours, else
/// compiled and (best effort) written there. Processes wanting the same entry at once (the
/// workers of `run --workers`, segments started side by side) compile it once: the first
/// holds the entry's lock while it compiles, the others wait for it (at most `LOCK_WAIT`) and
/// read what it wrote.
pub fn component_in(
    engine: &Engine,
    bytes: &[u8],
    dir: Option<&Path>,
) -> wasmtime::Result<(Component, Source)> {
    let Some(dir) = dir else {
        return Ok((Component::new(engine, bytes)?, Source::Compiled));
    };
    let key = key(engine, bytes);
    let path = dir.join(format!("{key}.cwasm"));
    if let Some(component) = load(engine, dir, &path) {
        return Ok((component, Source::Cached));
    }
    if prepare(dir).is_err() {
        return Ok((Component::new(engine, bytes)?, Source::Compiled));
    }
    let _lock = lock(&dir.join(format!(".{key}.lock")));
    if let Some(component) = load(engine, dir, &path) {
        return Ok((component, Source::Cached));
    }
    let code = engine.precompile_component(bytes)?;
    let _ = store(dir, &path, &code);
    // SAFETY: `code` was made by `precompile_component` of this engine just now.
    let component = unsafe { Component::deserialize(engine, &code)? };
    Ok((component, Source::Compiled))
}

/// The directory made if it is missing (only its user may enter it), and usable: ours and
/// writable by no one else.
fn prepare(dir: &Path) -> std::io::Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    match trusted(dir) {
        true => Ok(()),
        false => Err(std::io::ErrorKind::PermissionDenied.into()),
    }
}

/// The lock file at `path` held, once no other process holds it or after `LOCK_WAIT` (a
/// stopped process must not stop every other); `None` where locks cannot be taken.
fn lock(path: &Path) -> Option<fs::File> {
    let file = fs::File::options()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)
        .ok()?;
    let start = std::time::Instant::now();
    loop {
        match file.try_lock() {
            Ok(()) => return Some(file),
            Err(fs::TryLockError::WouldBlock) if start.elapsed() < LOCK_WAIT => {
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(_) => return None,
        }
    }
}

/// The entry's name: a SHA-256 of what the compiled code depends on.
fn key(engine: &Engine, bytes: &[u8]) -> String {
    struct Sha(Context);
    impl Hasher for Sha {
        fn write(&mut self, bytes: &[u8]) {
            self.0.update(bytes);
        }
        fn finish(&self) -> u64 {
            0
        }
    }
    let mut sha = Sha(Context::new(&SHA256));
    std::hash::Hash::hash(&engine.precompile_compatibility_hash(), &mut sha);
    for patch in PATCHES {
        sha.write(digest(&SHA256, patch).as_ref());
    }
    sha.write(bytes);
    hex(sha.0.finish().as_ref())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The entry at `path` when it is ours, whole, and loads into `engine`.
fn load(engine: &Engine, dir: &Path, path: &Path) -> Option<Component> {
    if !trusted(dir) {
        return None;
    }
    let file = read_entry(path)?;
    let code = checked(&file)?;
    // SAFETY: the entry is this user's own, not writable by others, and whole (its SHA-256
    // matches): it was written by `store` from `precompile_component`'s output; wasmtime
    // refuses it if it was made for another engine's settings.
    unsafe { Component::deserialize(engine, code) }.ok()
}

/// The bytes of the entry at `path` when it is a regular file of ours that no one else may
/// write, of a size an entry can have; marked as used, so that pruning keeps it. Opened
/// without waiting (a FIFO put in its place would block a plain open), checked on the opened
/// file itself.
fn read_entry(path: &Path) -> Option<Vec<u8>> {
    let mut file = fs::File::options()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .ok()?;
    let meta = file.metadata().ok()?;
    let ours = meta.is_file() && owned(&meta) && meta.len() <= MAX_ENTRY;
    if !ours {
        return None;
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    std::io::Read::read_to_end(&mut file, &mut bytes).ok()?;
    let _ = file.set_modified(SystemTime::now());
    Some(bytes)
}

/// Owned by this process's user and writable by no one else.
fn trusted(path: &Path) -> bool {
    fs::metadata(path).is_ok_and(|m| owned(&m))
}

fn owned(meta: &fs::Metadata) -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    let uid = unsafe { libc::geteuid() };
    meta.uid() == uid && meta.mode() & 0o022 == 0
}

/// The code after the file's leading SHA-256, when it matches.
fn checked(file: &[u8]) -> Option<&[u8]> {
    let (sum, code) = file.split_at_checked(SHA256.output_len())?;
    (digest(&SHA256, code).as_ref() == sum).then_some(code)
}

/// Writes the entry whole or not at all: into a temporary file beside it, renamed over it.
fn store(dir: &Path, path: &Path, code: &[u8]) -> std::io::Result<()> {
    let mut temp = tempfile::Builder::new()
        .prefix(".")
        .suffix(".tmp")
        .tempfile_in(dir)?;
    temp.write_all(digest(&SHA256, code).as_ref())?;
    temp.write_all(code)?;
    temp.persist(path).map_err(|e| e.error)?;
    prune(dir, path);
    Ok(())
}

/// Keeps the `KEPT` most recently used entries (`keep` among them) and removes temporary
/// files left by processes that died while writing, and old lock files (one is made for each
/// entry compiled; taking one away at worst lets two processes compile the same entry).
fn prune(dir: &Path, keep: &Path) {
    let Ok(read) = fs::read_dir(dir) else { return };
    let now = SystemTime::now();
    let mut entries = Vec::new();
    for entry in read.flatten() {
        let path = entry.path();
        let Some(modified) = entry.metadata().and_then(|m| m.modified()).ok() else {
            continue;
        };
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let leftover = name.ends_with(".tmp") || name.ends_with(".lock");
        if name.starts_with('.') && leftover {
            if now
                .duration_since(modified)
                .is_ok_and(|age| age > STALE_TEMP)
            {
                let _ = fs::remove_file(&path);
            }
        } else if name.ends_with(".cwasm") && path != keep {
            entries.push((modified, path));
        }
    }
    entries.sort_by_key(|e| std::cmp::Reverse(e.0));
    for (_, path) in entries.into_iter().skip(KEPT - 1) {
        let _ = fs::remove_file(path);
    }
}
