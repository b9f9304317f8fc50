//! proxy.py (PyPI), a forward HTTP proxy with CONNECT tunnels and Basic authentication, on a
//! free loopback port; its access log says which address each client came from. Stopped and
//! cleaned up on drop.

use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct ProxyPy {
    child: Child,
    pub dir: PathBuf,
    pub port: u16,
}

impl Drop for ProxyPy {
    fn drop(&mut self) {
        // proxy.py forks its acceptor and worker: the whole group goes (killing the parent
        // alone left them running, polling, after every test run).
        // SAFETY: kill(2) on the group this child leads (made so by `process_group(0)`).
        unsafe { libc::kill(-(self.child.id() as i32), libc::SIGKILL) };
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn installed() -> bool {
    Command::new("proxy")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

impl ProxyPy {
    /// proxy.py asking for `basic_auth` (`user:password`) when given, or `None` with a
    /// SKIPPED line, unless REQUIRE_PROXY_PY is set (as in CI), where a missing proxy.py
    /// fails the test.
    pub fn start_or_skip(name: &str, basic_auth: Option<&str>) -> Option<ProxyPy> {
        if !installed() {
            assert!(
                std::env::var("REQUIRE_PROXY_PY").is_err(),
                "REQUIRE_PROXY_PY is set but proxy.py is not installed"
            );
            eprintln!("SKIPPED: proxy.py is not installed (pip install proxy.py)");
            return None;
        }
        let dir = std::env::temp_dir().join(format!("proxy-py-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut cmd = Command::new("proxy");
        cmd.args(["--hostname", "127.0.0.1", "--port", &port.to_string()])
            .args(["--num-workers", "1", "--num-acceptors", "1", "--log-file"])
            .arg(dir.join("proxy.log"));
        if let Some(auth) = basic_auth {
            cmd.args(["--basic-auth", auth]);
        }
        let child = cmd
            .process_group(0)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start proxy.py");
        let p = ProxyPy { child, dir, port };
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "proxy.py did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        Some(p)
    }

    /// The log once `n` of its lines hold `needle` (or after 10 s).
    pub fn log_with(&self, needle: &str, n: usize) -> String {
        let start = Instant::now();
        loop {
            let log = std::fs::read_to_string(self.dir.join("proxy.log")).unwrap_or_default();
            let found = log.lines().filter(|l| l.contains(needle)).count();
            if found >= n || start.elapsed() > Duration::from_secs(10) {
                return log;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}
