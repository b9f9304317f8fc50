//! A test's or a benchmark's scratch directory under the system's temporary directory
//! (tempfile's, under a name that says whose): new, removed when it goes out of scope after a
//! pass, kept (its path printed) after a failure so what the run wrote can be read. Before it,
//! every run of the suites left about 120 MB of such directories in `/tmp`.

use std::ops::Deref;
use std::path::Path;

pub struct Scratch {
    dir: tempfile::TempDir,
}

impl Scratch {
    /// `$TMPDIR/NAME-XXXXXX`, new and empty.
    pub fn new(name: &str) -> Scratch {
        let dir = tempfile::Builder::new()
            .prefix(&format!("{name}-"))
            .tempdir()
            .expect("make a scratch directory");
        Scratch { dir }
    }
}

impl Deref for Scratch {
    type Target = Path;
    fn deref(&self) -> &Path {
        self.dir.path()
    }
}

impl AsRef<Path> for Scratch {
    fn as_ref(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.dir.disable_cleanup(true);
            eprintln!("kept for reading: {}", self.dir.path().display());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Scratch;

    #[test]
    fn removed_after_a_pass_kept_after_a_failure() {
        let passed = Scratch::new("scratch-pass");
        let path = passed.to_path_buf();
        std::fs::write(passed.join("f"), "x").unwrap();
        drop(passed);
        assert!(!path.exists());

        let failed = std::panic::catch_unwind(|| {
            let s = Scratch::new("scratch-fail");
            std::fs::write(s.join("f"), "x").unwrap();
            let path = s.to_path_buf();
            std::panic::panic_any(path);
        });
        let path = *failed
            .unwrap_err()
            .downcast::<std::path::PathBuf>()
            .unwrap();
        assert!(path.join("f").exists());
        std::fs::remove_dir_all(path).unwrap();
    }
}
