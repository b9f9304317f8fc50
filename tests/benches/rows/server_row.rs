//! Row 10: the http-server component beside nginx on the same machine, both under one wrk
//! (one thread, 16 keep-alive connections, each side one worker: one instance, one nginx
//! worker), and the resident memory an idle server instance costs.

use std::path::Path;
use std::time::Duration;

use super::*;

/// `scheduler serve` of `instances` instances of a one-route server on pool `range`, port
/// `port`, for `secs`; the child and its URLs once they listen.
fn serve(
    scheduler: &str,
    dir: &Path,
    range: &str,
    instances: u32,
    port: u16,
) -> (std::process::Child, Vec<String>) {
    let text = format!(
        "workbook:\n  ip_pools: [ {{ id: b, ranges: [\"{range}\"] }} ]\nservers:\n  - {{ id: s, pool: b, instances: {instances}, port: {port}, routes: [ {{ method: GET, path: /, body: \"hello\\n\" }} ] }}\n"
    );
    let path = dir.join(format!("servers-{instances}.yaml"));
    std::fs::write(&path, text).unwrap();
    let mut child = Command::new(scheduler)
        .args(["serve", path.to_str().unwrap(), "--duration", "120s"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut urls = Vec::new();
    while urls.len() < instances as usize {
        let mut line = String::new();
        if std::io::BufRead::read_line(&mut out, &mut line).unwrap_or(0) == 0 {
            break;
        }
        if let Some((_, u)) = line.trim().split_once(' ') {
            urls.push(u.to_string());
        }
    }
    // Keep reading its output so it never blocks on a full pipe.
    thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()));
    (child, urls)
}

fn wrk_rps(wrk: &str, url: &str, secs: u32) -> f64 {
    let out = Command::new(wrk)
        .args(["-t1", "-c16", &format!("-d{secs}s"), url])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!text.contains("Non-2xx"), "{text}");
    text.lines()
        .find_map(|l| l.strip_prefix("Requests/sec:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0)
}

fn rss_kib(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0.0)
}

/// Instances of row 10n: one a core.
const INSTANCES: u32 = 2;

/// `INSTANCES` instances in one `serve`, each under a wrk of its own at once: the aggregate.
fn instances_together((scheduler, dir): (&str, &Path), wrk: &str, secs: u32, reps: usize) -> Stat {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let (mut child, urls) = serve(scheduler, dir, "127.0.98.4/30", INSTANCES, port);
    let mut runs = Vec::new();
    for _ in 0..reps {
        let handles: Vec<_> = urls
            .iter()
            .map(|u| {
                let (wrk, url) = (wrk.to_string(), format!("{u}/"));
                thread::spawn(move || wrk_rps(&wrk, &url, secs))
            })
            .collect();
        runs.push(handles.into_iter().map(|h| h.join().unwrap_or(0.0)).sum());
    }
    let _ = child.kill();
    let _ = child.wait();
    stat(runs)
}

pub fn server(t: &mut Table, quick: bool, reps: usize, ng: &Nginx) {
    let wrk = ["/usr/bin/wrk", "/usr/local/bin/wrk"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists());
    let (Some(wrk), Some(scheduler)) = (wrk, scheduler_binary(quick)) else {
        t.row(
            "10",
            "http-server vs nginx",
            "-".into(),
            "wrk or scheduler missing".into(),
            "-".into(),
            ">= 0.5 x nginx",
        );
        return;
    };
    let dir = integration_tests::scratch::Scratch::new("bench-server");
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let (mut child, urls) = serve(&scheduler, &dir, "127.0.98.0/30", 1, port);
    let secs = if quick { 1 } else { 5 };
    let nginx_url = format!("http://127.0.0.1:{}/", ng.port);
    let ours_url = format!("{}/", urls[0]);
    let (ours, theirs) = ab(
        reps,
        || wrk_rps(wrk, &ours_url, secs),
        || wrk_rps(wrk, &nginx_url, secs),
    );
    let _ = child.kill();
    let _ = child.wait();
    let many = instances_together((&scheduler, &dir), wrk, secs, reps);
    t.row(
        "10",
        "HTTP server, wrk -t1 -c16 keep-alive GET: one http-server instance vs one nginx worker",
        fmt(&ours, "req/s"),
        fmt(&theirs, "req/s"),
        format!("{:.2} x nginx", ours.median / theirs.median),
        &t.judged(">= 0.5 x nginx", ours.median >= 0.5 * theirs.median),
    );
    t.row(
        "10n",
        &format!(
            "the same, {INSTANCES} instances on their own addresses, a wrk each at once (aggregate)"
        ),
        fmt(&many, "req/s"),
        fmt(&ours, "req/s (one)"),
        format!("{:.2} x one instance", many.median / ours.median),
        "reported",
    );
    // Idle instances: the resident memory of 101 against 1, per instance.
    let n = 100;
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let (mut one, _) = serve(&scheduler, &dir, "127.0.98.0/30", 1, port);
    let (mut many, urls) = serve(&scheduler, &dir, "127.0.99.0/25", n + 1, port);
    thread::sleep(Duration::from_millis(500));
    let per = (rss_kib(many.id()) - rss_kib(one.id())) / f64::from(n);
    for c in [&mut one, &mut many] {
        let _ = c.kill();
        let _ = c.wait();
    }
    t.row(
        "10m",
        &format!(
            "resident memory per idle server instance ({} listening)",
            urls.len()
        ),
        format!("{per:.0} KiB"),
        "-".into(),
        "-".into(),
        "reported",
    );
}
