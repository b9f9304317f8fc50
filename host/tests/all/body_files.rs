//! Bodies from files (`with.body_file`, `with.form`, `exec -T` and `-F name=@file`): the exact
//! bytes reach the server, from each user's own address, and are streamed by the host as they
//! are sent, so four users sending 64 MiB each never hold it (the children's peak RSS stays
//! far below it). Checked server-side by gunicorn, which hashes what it got and parses the
//! forms with Python's own multipart parser.

use integration_tests::scratch::Scratch;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use integration_tests::gunicorn::Gunicorn;
use serde_json::Value;
use sha2::{Digest, Sha256};

const BIN: &str = env!("CARGO_BIN_EXE_scheduler");
const BIG: usize = 64 << 20;

/// Logs one JSON line a request: source, method, Content-Length, the body's SHA-256, and for
/// a form each part's name, file name, type, length and SHA-256. A 307 for `/moved`.
const HASHING_APP: &str = r#"
import hashlib, json
from email.parser import BytesParser
from email.policy import HTTP

def app(environ, start_response):
    if environ["PATH_INFO"] == "/moved":
        start_response("307 Temporary Redirect", [("Location", "/put"), ("Content-Length", "0")])
        return [b""]
    n = int(environ.get("CONTENT_LENGTH") or 0)
    h = hashlib.sha256()
    data = bytearray() if environ.get("CONTENT_TYPE", "").startswith("multipart/") else None
    left = n
    while left > 0:
        b = environ["wsgi.input"].read(min(left, 1 << 20))
        if not b:
            break
        h.update(b)
        if data is not None:
            data.extend(b)
        left -= len(b)
    rec = {"src": environ["REMOTE_ADDR"], "method": environ["REQUEST_METHOD"],
           "path": environ["PATH_INFO"], "len": n - left, "sha": h.hexdigest()}
    if data is not None:
        msg = BytesParser(policy=HTTP).parsebytes(
            b"Content-Type: " + environ["CONTENT_TYPE"].encode() + b"\r\n\r\n" + bytes(data))
        rec["parts"] = [
            {"name": p.get_param("name", header="content-disposition"),
             "filename": p.get_filename(), "type": p.get_content_type(),
             "len": len(p.get_payload(decode=True)),
             "sha": hashlib.sha256(p.get_payload(decode=True)).hexdigest()}
            for p in msg.iter_parts()]
    with open("{dir}/seen.log", "a") as f:
        f.write(json.dumps(rec) + "\n")
    start_response("200 OK", [("Content-Length", "2")])
    return [b"ok"]
"#;

/// A scratch directory for the test `name` (removed after a pass, kept after a failure).
fn tmp(name: &str) -> Scratch {
    Scratch::new(&format!("body-files-{name}"))
}

fn seen(g: &Gunicorn) -> Vec<Value> {
    std::fs::read_to_string(g.dir.join("seen.log"))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// A file of `len` bytes that are not all the same, and its SHA-256.
fn file(dir: &Path, name: &str, len: usize) -> (PathBuf, String) {
    let mut bytes = Vec::with_capacity(len);
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    while bytes.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        bytes.extend_from_slice(&x.to_le_bytes());
    }
    bytes.truncate(len);
    let p = dir.join(name);
    std::fs::write(&p, &bytes).unwrap();
    (p, hex(&Sha256::digest(&bytes)))
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn run(args: &[&str]) -> Output {
    Command::new(BIN).args(args).output().unwrap()
}

/// The largest resident set of any child this test binary has waited for, in KiB.
fn children_peak_kib() -> i64 {
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    assert_eq!(
        unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut ru) },
        0
    );
    ru.ru_maxrss
}

fn scenario(port: u16) -> String {
    format!(
        r#"
version: "1.0"
name: body-files
workbook:
  ip_pools: [ {{ id: p, ranges: ["127.0.78.0/29"] }} ]
load:
  ramp_up: {{ phases: [ {{ at_second: 0, spawn_users: 4 }} ] }}
  user_lifetime: {{ mode: loop, iterations: 1 }}
  user_resources: {{ ip_binding: {{ enabled: true, pool_id: p, strategy: per_user }} }}
actions:
  actions:
    - id: put
      call: put
      with: {{ url: "http://127.0.0.1:{port}/put", body_file: big.bin }}
    - id: form
      call: post
      with:
        url: "http://127.0.0.1:{port}/form"
        form:
          who: "user {{{{user.id}}}}"
          note: {{ file: files/note.txt }}
          blob: {{ file: big.bin, filename: "b.bin", content_type: application/x-thing }}
    - id: moved
      call: put
      with: {{ url: "http://127.0.0.1:{port}/moved", body_file: files/note.txt }}
workflows:
  nodes:
    - {{ id: a, type: action, action: put, edges: [ {{ to: b }} ] }}
    - {{ id: b, type: action, action: form, edges: [ {{ to: c }} ] }}
    - {{ id: c, type: action, action: moved, edges: [ {{ to: end }} ] }}
    - {{ id: end, type: end }}
"#
    )
}

#[test]
fn run_streams_files_and_forms_from_each_users_address() {
    let Some(g) = Gunicorn::start_or_skip("body-files", HASHING_APP) else {
        return;
    };
    let dir = tmp("run");
    let (_, big_sha) = file(&dir, "big.bin", BIG);
    std::fs::create_dir_all(dir.join("files")).unwrap();
    let (_, note_sha) = file(&dir.join("files"), "note.txt", 1000);
    let path = dir.join("s.yaml");
    std::fs::write(&path, scenario(g.port)).unwrap();
    let json = dir.join("r.json");
    // Run from elsewhere: the files are the scenario's.
    let out = Command::new(BIN)
        .current_dir(std::env::temp_dir())
        .args(["run", path.to_str().unwrap(), "--json"])
        .arg(&json)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    // The 307 to a streamed body is the answer (not followed): an http 3xx is no failure.
    assert!(out.status.success(), "{err}");
    let all = seen(&g);
    let puts: Vec<&Value> = all.iter().filter(|r| r["path"] == "/put").collect();
    assert_eq!(puts.len(), 4, "the 307 was not followed: {all:?}");
    let mut sources: Vec<&str> = puts.iter().map(|r| r["src"].as_str().unwrap()).collect();
    sources.sort();
    sources.dedup();
    assert_eq!(sources.len(), 4, "one address per user: {sources:?}");
    for r in &puts {
        assert!(r["src"].as_str().unwrap().starts_with("127.0.78."), "{r}");
        assert_eq!(r["method"], "PUT");
        assert_eq!(r["len"], BIG as u64);
        assert_eq!(r["sha"], big_sha.as_str());
    }
    let forms: Vec<&Value> = all.iter().filter(|r| r["path"] == "/form").collect();
    assert_eq!(forms.len(), 4);
    for r in &forms {
        let parts = r["parts"].as_array().unwrap();
        assert_eq!(parts.len(), 3, "{r}");
        // In name order: blob, note, who.
        assert_eq!(parts[2]["name"], "who");
        assert!(parts[2]["filename"].is_null());
        assert_eq!(parts[1]["name"], "note");
        assert_eq!(parts[1]["filename"], "note.txt");
        assert_eq!(parts[1]["type"], "text/plain");
        assert_eq!(parts[1]["sha"], note_sha.as_str());
        assert_eq!(parts[0]["filename"], "b.bin");
        assert_eq!(parts[0]["type"], "application/x-thing");
        assert_eq!(parts[0]["len"], BIG as u64);
        assert_eq!(parts[0]["sha"], big_sha.as_str());
    }
    let r: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(r["totals"]["requests"], 12, "{r}");
    let moved = &r["by_action"]["moved"];
    assert_eq!(
        (&moved["requests"], &moved["ok"]),
        (&4.into(), &4.into()),
        "{moved}"
    );
    // Four users held 64 MiB each if bodies were read whole: 256 MiB at least.
    let peak = children_peak_kib();
    assert!(peak < 200 * 1024, "peak RSS {peak} KiB");
}

#[test]
fn exec_streams_upload_files_as_curl_does() {
    let Some(g) = Gunicorn::start_or_skip("exec-files", HASHING_APP) else {
        return;
    };
    let dir = tmp("exec");
    let (big, big_sha) = file(&dir, "big.bin", BIG);
    let url = format!("http://127.0.0.1:{}/put", g.port);
    let out = run(&[
        "exec",
        "-T",
        big.to_str().unwrap(),
        &url,
        "--bind-ip",
        "127.0.78.9",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let form = format!("f=@{};type=a/b", big.display());
    let url = format!("http://127.0.0.1:{}/form", g.port);
    let out = run(&["exec", "-F", "t=hi", "-F", &form, &url]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let all = seen(&g);
    assert_eq!(all[0]["src"], "127.0.78.9");
    assert_eq!(all[0]["sha"], big_sha.as_str());
    let parts = all[1]["parts"].as_array().unwrap();
    assert_eq!(parts[0]["name"], "t");
    assert_eq!(parts[1]["filename"], "big.bin");
    assert_eq!(parts[1]["type"], "a/b");
    assert_eq!(parts[1]["sha"], big_sha.as_str());
    // curl's 26 for a file that cannot be read; nothing is sent.
    let out = run(&["exec", "-T", "/nonexistent/file", &url]);
    assert_eq!(out.status.code(), Some(26));
    assert_eq!(seen(&g).len(), 2);
}

#[test]
fn validate_names_missing_files_and_two_bodies() {
    let dir = tmp("validate");
    let check = |text: String, want: &[&str]| {
        let path = dir.join("s.yaml");
        std::fs::write(&path, text).unwrap();
        let out = run(&["validate", path.to_str().unwrap()]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{err}");
        for w in want {
            assert!(err.contains(w), "{w}: {err}");
        }
    };
    let two = scenario(9).replace("body_file: big.bin", "body_file: big.bin, body: \"x\"");
    check(
        two,
        &["actions.actions[0].with.body_file: an action has one body"],
    );
    let missing = scenario(9).replace("files/note.txt }", "files/none.txt }");
    check(
        missing,
        &[
            "actions.actions[0].with.body_file: ",
            "big.bin",
            "actions.actions[1].with.form.note.file: ",
            "none.txt",
        ],
    );
}
