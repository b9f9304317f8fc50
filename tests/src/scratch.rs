//! A test's or a benchmark's scratch directory under the system's temporary directory: made
//! empty, removed when it goes out of scope after a pass, kept (its path printed) after a
//! failure so what the run wrote can be read. Before it, every run of the suites left about
//! 120 MB of such directories in `/tmp`.

use std::ops::Deref;
use std::path::{Path, PathBuf};

pub struct Scratch {
    path: PathBuf,
}

impl Scratch {
    /// `$TMPDIR/NAME-PID`, empty.
    pub fn new(name: &str) -> Scratch {
        let path = std::env::temp_dir().join(format!("{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("make a scratch directory");
        Scratch { path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Deref for Scratch {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.path
    }
}

impl AsRef<Path> for Scratch {
    fn as_ref(&self) -> &Path {
        &self.path
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("kept for reading: {}", self.path.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.path);
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
