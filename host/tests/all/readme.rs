//! The README's first scenario validates strictly and runs as it says, against a target that
//! logs users in.

use integration_tests::http_server::{Reply, serve};

use crate::common::*;

#[test]
fn the_readmes_first_scenario_runs() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md")).unwrap();
    let start = readme.find("```yaml\n").expect("a yaml block") + 8;
    let len = readme[start..].find("```").unwrap();
    let text = &readme[start..start + len];
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let s = seen.clone();
    let server = serve("127.0.0.1:0", None, move |r| {
        s.lock().unwrap().push((
            r.path.clone(),
            r.peer.ip().to_string(),
            r.header("authorization").map(str::to_string),
        ));
        match r.path.as_str() {
            "/login" => Reply::ok(format!("{{\"token\": \"t-{}\"}}", r.peer.ip())),
            _ => Reply::ok("home"),
        }
    });
    let dir = tmp("readme");
    let scenario = text
        .replace("http://127.0.0.1:8080", &server.url(""))
        .replace("duration: 30s", "duration: 2s");
    let path = scenario_file(&dir, &scenario);
    let out = run(&["validate", "--strict", path.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (out, r) = report(&dir, &scenario);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{r}",
        String::from_utf8_lossy(&out.stderr)
    );
    let seen = seen.lock().unwrap();
    let homes: Vec<_> = seen.iter().filter(|(p, _, _)| p == "/home").collect();
    assert!(!homes.is_empty());
    // Each home request carries the token its own user's login got, from the same address.
    assert!(
        homes
            .iter()
            .all(|(_, ip, auth)| auth.as_deref() == Some(&format!("Bearer t-{ip}"))),
        "{homes:?}"
    );
    assert_eq!(r["by_tenant"]["acme"]["failed"], 0, "{r}");
}
