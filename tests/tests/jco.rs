//! `scheduler-executor-portable.wasm` under jco on Node (a host with no `wasi:tls`):
//! transpiled with jco and run with `@bytecodealliance/preview2-shim`, a GET to a server here
//! works and `https://` is `tls(unsupported)`.
//!
//! Needs Node and an npm directory with `@bytecodealliance/jco` and
//! `@bytecodealliance/preview2-shim` installed, named by `JCO_DIR` (`.ci/run` makes one). Where
//! it is missing the test says so and passes, unless REQUIRE_JCO=1 (as in CI).

use std::path::PathBuf;
use std::process::Command;

use integration_tests::http_server::{Reply, serve};

const SCRIPT: &str = r#"
const port = process.argv[2];
const { executor } = await import('./out/executor.js');
const run = (url) => {
  try {
    return executor.executeAction({ id: 'a', call: 'get', withParams: JSON.stringify({ url }), exports: [] });
  } catch (e) {
    return { error: e.payload ?? String(e) };
  }
};
const o = run(`http://127.0.0.1:${port}/jco`);
console.log(JSON.stringify({ status: o.status, body: o.body ? Buffer.from(o.body).toString() : null, error: o.error }));
const t = run(`https://127.0.0.1:${port}/jco`);
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
    let server = serve("127.0.0.1:0", None, |_| {
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
    assert_eq!(lines[0]["status"], 200, "{stdout}");
    assert_eq!(lines[0]["body"], "hello jco");
    assert_eq!(lines[1]["tag"], "tls", "{stdout}");
    assert_eq!(lines[1]["val"]["reason"], "unsupported");
    let _ = std::fs::remove_dir_all(&work);
}
