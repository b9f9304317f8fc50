//! Debian's nginx, started on a free loopback port with a config of our own (no daemon, one
//! process, everything under a temporary prefix). Stopped and cleaned up on drop.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

pub fn binary() -> Option<PathBuf> {
    ["/usr/sbin/nginx", "/usr/bin/nginx", "/usr/local/sbin/nginx"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
}

/// nginx for a test: its binary, or `None` with a SKIPPED line, unless REQUIRE_NGINX is set
/// (as in CI), where a missing nginx fails the test.
pub fn binary_or_skip() -> Option<PathBuf> {
    let bin = binary();
    if bin.is_none() {
        assert!(
            std::env::var("REQUIRE_NGINX").is_err(),
            "REQUIRE_NGINX is set but nginx is not installed"
        );
        eprintln!("SKIPPED: nginx is not installed (apt-get install nginx-light)");
    }
    bin
}

pub struct Nginx {
    child: Child,
    pub dir: PathBuf,
    pub port: u16,
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Nginx {
    /// CPU time nginx has used so far (user, system), in seconds: its one process's counters
    /// in `/proc`, in clock ticks of 1/100 s.
    pub fn cpu(&self) -> Option<(f64, f64)> {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).ok()?;
        cpu_fields(&stat, 11)
    }

    /// `http` is placed in the `http` block (`{dir}` is replaced by the prefix); the server
    /// answers every request with 200 and `body`.
    pub fn start(bin: &Path, name: &str, http: &str, body: &str) -> Result<Nginx, String> {
        let server = format!(
            "server {{ listen 127.0.0.1:{{port}} backlog=4096; location / {{ return 200 \"{}\"; }} }}",
            body.escape_default()
        );
        Self::start_server(bin, name, http, &server)
    }

    /// `server` is the whole `server` block (`{port}` is replaced by the port, `{dir}` by the
    /// prefix).
    pub fn start_server(bin: &Path, name: &str, http: &str, server: &str) -> Result<Nginx, String> {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| e.to_string())?
            .port();
        let dir = std::env::temp_dir().join(format!("{name}-nginx-{}-{port}", std::process::id()));
        std::fs::create_dir_all(dir.join("logs")).map_err(|e| e.to_string())?;
        let d = dir.display().to_string();
        let conf = format!(
            "daemon off;\nmaster_process off;\nworker_processes 1;\nerror_log {d}/logs/error.log warn;\npid {d}/nginx.pid;\n\
events {{ worker_connections 4096; }}\n\
http {{\n    client_body_temp_path {d}/body;\n    proxy_temp_path {d}/proxy;\n    fastcgi_temp_path {d}/fastcgi;\n\
    uwsgi_temp_path {d}/uwsgi;\n    scgi_temp_path {d}/scgi;\n    {}\n    {}\n}}\n",
            http.replace("{dir}", &d),
            server
                .replace("{port}", &port.to_string())
                .replace("{dir}", &d)
        );
        std::fs::write(dir.join("nginx.conf"), conf).map_err(|e| e.to_string())?;
        let child = Command::new(bin)
            .arg("-p")
            .arg(&dir)
            .arg("-c")
            .arg(dir.join("nginx.conf"))
            .spawn()
            .map_err(|e| format!("starting nginx: {e}"))?;
        let ng = Nginx { child, dir, port };
        let start = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if start.elapsed() > Duration::from_secs(10) {
                return Err(format!(
                    "nginx did not start: {}",
                    std::fs::read_to_string(ng.dir.join("logs/error.log")).unwrap_or_default()
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(ng)
    }
}

/// Two CPU counters of a `/proc/PID/stat` line, in seconds: the `at`-th and next field after
/// the command name (11: the process's own user and system time; 13: its waited-for
/// children's). The name is in parentheses and may hold spaces, so fields count from the last
/// `)`.
pub fn cpu_fields(stat: &str, at: usize) -> Option<(f64, f64)> {
    let mut f = stat.rsplit_once(')')?.1.split_whitespace().skip(at);
    let user: u64 = f.next()?.parse().ok()?;
    let sys: u64 = f.next()?.parse().ok()?;
    Some((user as f64 / 100.0, sys as f64 / 100.0))
}

/// CPU time (user, system) in seconds of this process's children that have ended and been
/// waited for.
pub fn children_cpu() -> Option<(f64, f64)> {
    cpu_fields(&std::fs::read_to_string("/proc/self/stat").ok()?, 13)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_counters_from_proc_stat() {
        // A command name with a space and a parenthesis; utime 250, stime 50, cutime 1234,
        // cstime 7 (in 1/100 s).
        let line = "4242 (ng x) y) S 1 4242 4242 0 -1 4194560 500 0 0 0 250 50 1234 7 20 0 1 0";
        assert_eq!(cpu_fields(line, 11), Some((2.5, 0.5)));
        assert_eq!(cpu_fields(line, 13), Some((12.34, 0.07)));
        assert_eq!(cpu_fields("4242 (short) S 1", 11), None);
        assert_eq!(cpu_fields("no name here", 11), None);
        // A child that ran and was waited for counts; the counters never go back.
        let before = children_cpu().expect("/proc/self/stat");
        let status = Command::new("sh")
            .args(["-c", "i=0; while [ $i -lt 300000 ]; do i=$((i+1)); done"])
            .status()
            .unwrap();
        assert!(status.success());
        let after = children_cpu().unwrap();
        assert!(
            after.0 + after.1 > before.0 + before.1,
            "{before:?} -> {after:?}"
        );
    }
}
