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
    /// `http` is placed in the `http` block (`{dir}` is replaced by the prefix); the server
    /// answers every request with 200 and `body`.
    pub fn start(bin: &Path, name: &str, http: &str, body: &str) -> Result<Nginx, String> {
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
    uwsgi_temp_path {d}/uwsgi;\n    scgi_temp_path {d}/scgi;\n    {}\n\
    server {{ listen 127.0.0.1:{port} backlog=4096; location / {{ return 200 \"{}\"; }} }}\n}}\n",
            http.replace("{dir}", &d),
            body.escape_default()
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
