//! The compiled-artifact cache (`compose::cache`) on a real directory, with the real server
//! artifact: a second load reads what the first wrote; damaged, foreign and other engines'
//! entries are compiled again; an unusable directory costs only the compile.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use compose::cache::{KEPT, Source, component_in};
use wasmtime::component::Component;
use wasmtime::{Config, Engine};

fn load(engine: &Engine, dir: &Path) -> (Component, Source) {
    component_in(engine, compose::SERVER_BYTES, Some(dir)).unwrap()
}

/// The directory's compiled entries (not the lock files beside them).
fn entries(dir: &Path) -> Vec<PathBuf> {
    let mut all: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| !p.to_string_lossy().ends_with(".lock"))
        .collect();
    all.sort();
    all
}

/// A fresh cache directory holding the one entry a first load wrote, and its path.
fn one_entry() -> (tempfile::TempDir, Engine, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::default();
    assert_eq!(load(&engine, dir.path()).1, Source::Compiled);
    let path = entries(dir.path()).remove(0);
    (dir, engine, path)
}

fn exports(engine: &Engine, component: &Component) -> Vec<String> {
    let ty = component.component_type();
    ty.exports(engine)
        .map(|(name, _)| name.to_string())
        .collect()
}

#[test]
fn a_second_load_reads_what_the_first_wrote() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::default();
    let (compiled, source) = load(&engine, dir.path());
    assert_eq!(source, Source::Compiled);
    let written = entries(dir.path());
    assert_eq!(written.len(), 1, "{written:?}");
    assert!(written[0].to_string_lossy().ends_with(".cwasm"));
    let mode = fs::metadata(&written[0]).unwrap().permissions().mode();
    assert_eq!(mode & 0o077, 0, "readable by others: {mode:o}");
    let (cached, source) = load(&engine, dir.path());
    assert_eq!(source, Source::Cached);
    assert_eq!(exports(&engine, &cached), exports(&engine, &compiled));
    assert!(!exports(&engine, &cached).is_empty());
    assert_eq!(entries(dir.path()), written);
}

#[test]
fn a_damaged_or_torn_entry_is_compiled_again_and_replaced() {
    let (dir, engine, path) = one_entry();
    let whole = fs::read(&path).unwrap();
    let mut flipped = whole.clone();
    let last = flipped.len() - 1;
    flipped[last] ^= 1;
    let damaged = [flipped, whole[..whole.len() / 2].to_vec(), Vec::new()];
    for bad in damaged {
        fs::write(&path, &bad).unwrap();
        assert_eq!(load(&engine, dir.path()).1, Source::Compiled);
        assert_eq!(fs::read(&path).unwrap(), whole);
        assert_eq!(load(&engine, dir.path()).1, Source::Cached);
    }
}

#[test]
fn an_entry_others_could_have_written_is_not_loaded() {
    let (dir, engine, path) = one_entry();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o666)).unwrap();
    assert_eq!(load(&engine, dir.path()).1, Source::Compiled);
    // Replaced by one of ours, which is then used.
    assert_eq!(load(&engine, dir.path()).1, Source::Cached);
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o777)).unwrap();
    assert_eq!(load(&engine, dir.path()).1, Source::Compiled);
    assert_eq!(load(&engine, dir.path()).1, Source::Compiled);
}

#[test]
fn each_engine_setting_has_its_own_entry() {
    let dir = tempfile::tempdir().unwrap();
    let small = Engine::default();
    let mut config = Config::new();
    config.memory_reservation(1 << 24);
    let other = Engine::new(&config).unwrap();
    assert_eq!(load(&small, dir.path()).1, Source::Compiled);
    assert_eq!(load(&other, dir.path()).1, Source::Compiled);
    assert_eq!(entries(dir.path()).len(), 2);
    assert_eq!(load(&small, dir.path()).1, Source::Cached);
    assert_eq!(load(&other, dir.path()).1, Source::Cached);
}

#[test]
fn an_unusable_directory_costs_only_the_compile() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    fs::write(&file, b"not a directory").unwrap();
    let engine = Engine::default();
    for _ in 0..2 {
        let (component, source) = load(&engine, &file.join("cache"));
        assert_eq!(source, Source::Compiled);
        assert!(!exports(&engine, &component).is_empty());
    }
    assert_eq!(fs::read(&file).unwrap(), b"not a directory");
    assert_eq!(entries(dir.path()), vec![file]);
}

#[test]
fn old_entries_and_dead_writers_temporary_files_are_removed() {
    let dir = tempfile::tempdir().unwrap();
    let day_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(86_400);
    let old = |name: String| {
        let path = dir.path().join(name);
        fs::write(&path, b"old").unwrap();
        let file = fs::File::options().write(true).open(&path).unwrap();
        file.set_modified(day_ago).unwrap();
        path
    };
    let stale: Vec<_> = (0..KEPT + 2)
        .map(|i| old(format!("{i:064}.cwasm")))
        .collect();
    let temp = old(".abc123.tmp".into());
    let lock = old(format!(".{:064}.lock", 7));
    let other = old("notes.txt".into());
    let engine = Engine::default();
    load(&engine, dir.path());
    let left = entries(dir.path());
    assert_eq!(left.len(), KEPT + 1, "{left:?}");
    assert!(!left.contains(&temp));
    assert!(!lock.exists());
    assert!(left.contains(&other));
    assert_eq!(stale.iter().filter(|p| left.contains(p)).count(), KEPT - 1);
    assert_eq!(load(&engine, dir.path()).1, Source::Cached);
}

#[test]
fn loads_at_once_compile_once_and_the_others_read_it() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::default();
    let start = std::sync::Barrier::new(4);
    let sources: Vec<Source> = std::thread::scope(|s| {
        let loads: Vec<_> = (0..4)
            .map(|_| {
                s.spawn(|| {
                    start.wait();
                    load(&engine, dir.path()).1
                })
            })
            .collect();
        loads.into_iter().map(|l| l.join().unwrap()).collect()
    });
    let compiled = sources.iter().filter(|s| **s == Source::Compiled).count();
    assert_eq!(compiled, 1, "{sources:?}");
    assert_eq!(entries(dir.path()).len(), 1);
}

#[test]
fn a_fifo_or_a_directory_in_an_entrys_place_is_not_waited_on() {
    let (dir, engine, path) = one_entry();
    let fifo = || {
        fs::remove_file(&path).unwrap();
        let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: a valid C string; mkfifo has no other precondition.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    };
    fifo();
    let (tx, rx) = std::sync::mpsc::channel();
    let (d, e) = (dir.path().to_path_buf(), engine.clone());
    std::thread::spawn(move || tx.send(load(&e, &d).1).unwrap());
    let source = rx.recv_timeout(std::time::Duration::from_secs(120));
    assert_eq!(source, Ok(Source::Compiled), "a FIFO was waited on");
    assert_eq!(load(&engine, dir.path()).1, Source::Cached);
    fs::remove_file(&path).unwrap();
    fs::create_dir(&path).unwrap();
    assert_eq!(load(&engine, dir.path()).1, Source::Compiled);
    assert!(path.is_dir());
}
