//! `scheduler-executor-portable.wasm` under jco on Node (a host with no `wasi:tls`):
//! transpiled with jco and run with `@bytecodealliance/preview2-shim`: an ip-pool round trip,
//! a GET, a POST from a pool address (checked by the server here), and `https://` as
//! `tls(unsupported)`.
//!
//! Needs Node and an npm directory with `@bytecodealliance/jco` and
//! `@bytecodealliance/preview2-shim` installed, named by `JCO_DIR` (`.ci/run` makes one). Where
//! it is missing the test says so and passes, unless REQUIRE_JCO=1 (as in CI).

use std::path::PathBuf;
use std::process::Command;

use integration_tests::http_server::{Reply, serve};

const SCRIPT: &str = r#"
const port = process.argv[2];
const { executor, ipPool } = await import('./out/executor.js');
const run = (call, params) => {
  try {
    return executor.executeAction({ id: 'a', call, withParams: JSON.stringify(params), exports: [] });
  } catch (e) {
    return { error: e.payload ?? String(e) };
  }
};
const show = (o) => JSON.stringify({ status: o.status, body: o.body ? Buffer.from(o.body).toString() : null, source: o.sourceAddress, error: o.error });
// An ip-pool round trip: a pool, an address for an owner, the same again, released.
ipPool.createPool('p', { strategy: 'sequential', leaseTtlMs: undefined, seed: 1n });
ipPool.addCidr('p', '127.0.77.0/29', true);
const owner = { tenant: 't', resource: 'r', resourceType: { tag: 'vm' } };
const b = ipPool.allocate('p', owner);
const again = ipPool.allocate('p', owner);
console.log(JSON.stringify({ ip: b.ip, same: again.ip === b.ip }));
// A GET, and a POST from the pool address.
console.log(show(run('get', { url: `http://127.0.0.1:${port}/jco` })));
console.log(show(run('post', { url: `http://127.0.0.1:${port}/post`, bind_ip: b.ip, body: 'from node' })));
ipPool.release('p', b.ip, b.generation);
console.log(JSON.stringify({ allocated: Number(ipPool.stats('p').allocated) }));
const t = run('get', { url: `https://127.0.0.1:${port}/jco` });
console.log(JSON.stringify(t.error ?? { status: t.status }));
"#;

#[test]
fn the_portable_artifact_runs_under_jco() {
    let dir = std::env::var_os("JCO_DIR").map(PathBuf::from);
    let jco = dir.as_ref().map(|d| d.join("node_modules/.bin/jco"));
    let Some((dir, jco)) = dir.zip(jco).filter(|(_, j)| j.exists()) else {
        assert!(
            std::env::var("REQUIRE_JCO").is_err(),
            "REQUIRE_JCO is set but JCO_DIR has no jco"
        );
        eprintln!("SKIPPED: no jco (set JCO_DIR to an npm directory with jco and preview2-shim)");
        return;
    };
    let work = dir.join(format!("run-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).unwrap();
    let out = Command::new(&jco)
        .arg("transpile")
        .arg(compose::EXECUTOR_PORTABLE_ARTIFACT)
        .args(["--name", "executor", "-o"])
        .arg(work.join("out"))
        .output()
        .expect("run jco");
    assert!(
        out.status.success(),
        "jco transpile: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::write(work.join("out/package.json"), r#"{"type":"module"}"#).unwrap();
    std::fs::write(work.join("run.mjs"), SCRIPT).unwrap();
    // The server runs in this process: the guest's calls block Node's event loop.
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = seen.clone();
    let server = serve("127.0.0.1:0", None, move |r| {
        log.lock().unwrap().push((
            r.method.clone(),
            r.peer.ip().to_string(),
            String::from_utf8_lossy(&r.body).to_string(),
        ));
        Reply::Full(200, vec![], b"hello jco".to_vec())
    });
    let out = Command::new("node")
        .arg(work.join("run.mjs"))
        .arg(server.addr.port().to_string())
        .current_dir(&work)
        .output()
        .expect("run node");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    // The ip-pool round trip.
    let ip = lines[0]["ip"].as_str().unwrap().to_string();
    assert!(ip.starts_with("127.0.77."), "{stdout}");
    assert_eq!(lines[0]["same"], true);
    // The GET, and the POST from the pool address, as the server saw them.
    assert_eq!(lines[1]["status"], 200, "{stdout}");
    assert_eq!(lines[1]["body"], "hello jco");
    assert_eq!(lines[2]["status"], 200, "{stdout}");
    assert_eq!(
        lines[2]["source"].as_str().unwrap().split(':').next(),
        Some(ip.as_str())
    );
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert_eq!(seen[0].0, "GET");
    assert_eq!(
        (seen[1].0.as_str(), seen[1].1.as_str(), seen[1].2.as_str()),
        ("POST", ip.as_str(), "from node")
    );
    assert_eq!(lines[3]["allocated"], 0, "{stdout}");
    // https on a host without wasi:tls.
    assert_eq!(lines[4]["tag"], "tls", "{stdout}");
    assert_eq!(lines[4]["val"]["reason"], "unsupported");
    let _ = std::fs::remove_dir_all(&work);
}
