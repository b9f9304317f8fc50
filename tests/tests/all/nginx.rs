//! Requests through the executor artifact to a real nginx (Debian's package), started here on a
//! loopback port with its own config. Source addresses come from a 127.0.20.0/24 pool and must
//! show in nginx's `$remote_addr`; keep-alive reuse must show in `$connection_requests`.
//!
//! `.ci/run` installs nginx. Where it is missing the test says so and passes, unless
//! REQUIRE_NGINX=1 (as in CI), where it fails.

use std::time::{Duration, Instant};

use integration_tests::*;
use serde_json::json;

#[test]
fn nginx_sees_pool_addresses_and_keep_alive() {
    let Some(bin) = integration_tests::nginx::binary_or_skip() else {
        return;
    };
    let nginx = integration_tests::nginx::Nginx::start(
        &bin,
        "test",
        "log_format probe '$remote_addr $connection $connection_requests $request';\n    access_log {dir}/logs/access.log probe;\n    keepalive_requests 1000;",
        "hello from nginx\n",
    )
    .unwrap();
    let url = format!("http://127.0.0.1:{}/probe", nginx.port);

    let mut ex = Executor::new();
    ex.create_pool("nginx-pool", "127.0.20.0/24");

    // Three users, each with its own pool address, five keep-alive GETs each.
    let mut used = Vec::new();
    for user in 0..3 {
        let b = ex.allocate("nginx-pool", &format!("user-{user}"));
        for i in 0..5 {
            let o = ex
                .run(
                    HttpMethod::Get,
                    json!({ "url": url, "bind_ip": b.ip }),
                    vec![],
                )
                .unwrap();
            assert_eq!(o.status, 200);
            assert_eq!(o.body, b"hello from nginx\n");
            assert_eq!(o.reused_connection, i > 0);
        }
        used.push(b.ip);
    }
    // The bench reads nginx's CPU counters to report its cost per request.
    assert!(nginx.cpu().is_some(), "nginx's CPU time in /proc");
    // A POST with a JSON body and an export, from the pool in one action.
    let o = ex
        .run(
            HttpMethod::Post,
            json!({ "url": url, "pool": "nginx-pool", "tenant": "t", "resource": "poster", "body": {"data": "test"} }),
            vec![ExportSpec { name: "status_code".into(), source: ExportSource::StatusCode }],
        )
        .unwrap();
    assert_eq!(o.exports[0].value, "200");
    let post_ip = o
        .source_address
        .unwrap()
        .rsplit_once(':')
        .unwrap()
        .0
        .to_string();
    drop(ex);

    // nginx writes its log line after each response; give it a moment.
    let log_path = nginx.dir.join("logs/access.log");
    let start = Instant::now();
    let log = loop {
        let log = std::fs::read_to_string(&log_path).unwrap_or_default();
        if log.lines().count() >= 16 || start.elapsed() > Duration::from_secs(5) {
            break log;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let lines: Vec<Vec<&str>> = log.lines().map(|l| l.split(' ').collect()).collect();
    assert_eq!(lines.len(), 16, "{log}");
    for (user, ip) in used.iter().enumerate() {
        let mine: Vec<&Vec<&str>> = lines.iter().filter(|l| l[0] == ip).collect();
        assert_eq!(mine.len(), 5, "user {user} requests from {ip}");
        let conns: std::collections::BTreeSet<&str> = mine.iter().map(|l| l[1]).collect();
        assert_eq!(conns.len(), 1, "one connection per user");
        let counts: Vec<&str> = mine.iter().map(|l| l[2]).collect();
        assert_eq!(
            counts,
            ["1", "2", "3", "4", "5"],
            "$connection_requests shows reuse"
        );
    }
    assert!(post_ip.starts_with("127.0.20."));
    assert!(lines.iter().any(|l| l[0] == post_ip && l[3] == "POST"));
    assert!(
        lines.iter().all(|l| l[0].starts_with("127.0.20.")),
        "every request came from the pool"
    );
}
