//! Debian's etcd, started on two free loopback ports with a data dir of its own (no cluster
//! but itself). Stopped and cleaned up on drop.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub fn binary() -> Option<PathBuf> {
    ["/usr/bin/etcd", "/usr/local/bin/etcd"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
}

pub struct Etcd {
    pub child: Child,
    /// `http://127.0.0.1:PORT`, its client URL (and JSON gateway).
    pub url: String,
    dir: PathBuf,
}

impl Drop for Etcd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// One call of the JSON gateway: the answer, if there was one.
pub fn post(url: &str, path: &str, body: &str) -> Option<serde_json::Value> {
    let text = ureq::AgentBuilder::new()
        .timeout(Duration::from_secs(2))
        .build()
        .post(&format!("{url}{path}"))
        .send_string(body)
        .ok()?
        .into_string()
        .ok()?;
    serde_json::from_str(&text).ok()
}

impl Etcd {
    /// Start `bin` (named `name` in its data dir) and wait until it answers.
    pub fn start(bin: &Path, name: &str) -> Result<Etcd, String> {
        let mut last = String::new();
        for _ in 0..3 {
            match Self::try_start_on(bin, name, free_port().map_err(|e| e.to_string())?) {
                Ok(e) => return Ok(e),
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    /// `start`, its clients served on `client` (a port chosen before, for a process that is
    /// to find etcd there later). An etcd that exits at once (its peer port taken by a test
    /// running beside it between choosing and binding) is started again on another.
    pub fn start_on(bin: &Path, name: &str, client: u16) -> Result<Etcd, String> {
        let mut last = String::new();
        for _ in 0..3 {
            match Self::try_start_on(bin, name, client) {
                Ok(e) => return Ok(e),
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    /// etcd serving its clients over TLS on a free port (`https://127.0.0.1:PORT`), its
    /// certificate and key the given files, asking every client for a certificate signed by
    /// `ca`. Ready when its port accepts connections (a client without a certificate cannot
    /// ask it more). Started again on other ports if it exits at once, as `start_on`.
    pub fn start_tls(
        bin: &Path,
        name: &str,
        cert: &Path,
        key: &Path,
        ca: &Path,
    ) -> Result<Etcd, String> {
        let mut last = String::new();
        for _ in 0..3 {
            let client = free_port().map_err(|e| e.to_string())?;
            match Self::launch(bin, name, client, Some((cert, key, ca))) {
                Ok(e) => return Ok(e),
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    fn try_start_on(bin: &Path, name: &str, client: u16) -> Result<Etcd, String> {
        Self::launch(bin, name, client, None)
    }

    /// One etcd on `client` (over TLS with `tls`: certificate, key, CA of its clients), and
    /// the wait until it answers (for TLS, until its port accepts connections).
    fn launch(
        bin: &Path,
        name: &str,
        client: u16,
        tls: Option<(&Path, &Path, &Path)>,
    ) -> Result<Etcd, String> {
        let dir = std::env::temp_dir().join(format!("etcd-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let peer = free_port().map_err(|e| e.to_string())?;
        let scheme = if tls.is_some() { "https" } else { "http" };
        let url = format!("{scheme}://127.0.0.1:{client}");
        let peer_url = format!("http://127.0.0.1:{peer}");
        let mut cmd = Command::new(bin);
        cmd.arg("--data-dir")
            .arg(dir.join("data"))
            .args([
                "--listen-client-urls",
                &url,
                "--advertise-client-urls",
                &url,
            ])
            .args(["--listen-peer-urls", &peer_url])
            .args(["--initial-advertise-peer-urls", &peer_url])
            .args(["--initial-cluster", &format!("default={peer_url}")]);
        if let Some((cert, key, ca)) = tls {
            cmd.arg("--cert-file")
                .arg(cert)
                .arg("--key-file")
                .arg(key)
                .arg("--trusted-ca-file")
                .arg(ca)
                .arg("--client-cert-auth");
        }
        let child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("starting etcd: {e}"))?;
        let mut etcd = Etcd { child, url, dir };
        let ready = |e: &Etcd| match tls {
            Some(_) => std::net::TcpStream::connect(("127.0.0.1", client)).is_ok(),
            None => post(&e.url, "/v3/maintenance/status", "{}").is_some(),
        };
        let start = Instant::now();
        while !ready(&etcd) {
            if start.elapsed() > Duration::from_secs(20) {
                return Err("etcd did not start".into());
            }
            if let Ok(Some(status)) = etcd.child.try_wait() {
                return Err(format!("etcd exited at the start: {status}"));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(etcd)
    }
}
