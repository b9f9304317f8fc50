//! gunicorn (PyPI) serving a WSGI app of the test's own, on a free loopback port. Stopped and
//! cleaned up on drop.

use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Gunicorn {
    child: Child,
    pub dir: PathBuf,
    pub port: u16,
}

impl Drop for Gunicorn {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn installed() -> bool {
    Command::new("gunicorn")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

impl Gunicorn {
    /// gunicorn running `app` (Python source defining `app`, a WSGI callable; `{dir}` in it is
    /// replaced by the server's own directory), or `None` with a SKIPPED line, unless
    /// REQUIRE_GUNICORN is set (as in CI), where a missing gunicorn fails the test.
    pub fn start_or_skip(name: &str, app: &str) -> Option<Gunicorn> {
        if !installed() {
            assert!(
                std::env::var("REQUIRE_GUNICORN").is_err(),
                "REQUIRE_GUNICORN is set but gunicorn is not installed"
            );
            eprintln!("SKIPPED: gunicorn is not installed (pip install gunicorn)");
            return None;
        }
        let dir = std::env::temp_dir().join(format!("gunicorn-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let app = app.replace("{dir}", dir.to_str().unwrap());
        std::fs::write(dir.join("testapp.py"), app).unwrap();
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new("gunicorn")
            .args(["--workers", "2", "--timeout", "60", "--chdir"])
            .arg(&dir)
            .args(["-b", &format!("127.0.0.1:{port}"), "testapp:app"])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("error.log")).unwrap())
            .spawn()
            .expect("start gunicorn");
        let g = Gunicorn { child, dir, port };
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "gunicorn did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        Some(g)
    }
}
