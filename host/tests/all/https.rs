//! `scheduler run` and `scheduler exec` over HTTPS against nginx with TLS: a scenario's `tls:`
//! block (a CA file next to the scenario, a client identity per tenant), each user's source
//! address from its pool seen by nginx over TLS, and curl's flags for `exec`.
//!
//! `.ci/run` installs nginx; where it is missing the tests say so and pass, unless
//! REQUIRE_NGINX=1 (as in CI), where they fail.

use integration_tests::scratch::Scratch;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use compose::tls::pki::{Ca, Validity};
use integration_tests::nginx::{self, Nginx};
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_scheduler");

/// A scratch directory for the test `name` (removed after a pass, kept after a failure).
fn tmp(name: &str) -> Scratch {
    Scratch::new(&format!("scheduler-https-{name}"))
}

fn run(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .output()
        .expect("run scheduler")
}

/// nginx's access log once it has at least `n` lines (nginx writes a line after the response
/// has gone), or after 10 s.
fn access_log(ng: &Nginx, n: usize) -> String {
    let start = std::time::Instant::now();
    loop {
        let log = std::fs::read_to_string(ng.dir.join("logs/access.log")).unwrap_or_default();
        if log.lines().count() >= n || start.elapsed() > std::time::Duration::from_secs(10) {
            return log;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

fn write(d: &Path, name: &str, text: &str) -> PathBuf {
    let p = d.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

/// nginx with TLS; client certificates from `ca` are asked for, not required.
fn nginx_tls(d: &Path, ca: &Ca) -> Option<Nginx> {
    let bin = nginx::binary_or_skip()?;
    let leaf = ca
        .server(&["localhost", "127.0.0.1"], Validity::Now)
        .unwrap();
    let cert = write(d, "server.pem", &leaf.cert_pem);
    let key = write(d, "server.key", &leaf.key_pem);
    let ca_file = write(d, "nginx-ca.pem", &ca.cert_pem);
    let http = "log_format probe '$remote_addr $connection $connection_requests $ssl_protocol $ssl_client_s_dn $request';\n    access_log {dir}/logs/access.log probe;\n    keepalive_requests 1000;";
    let server = format!(
        "server {{ listen 127.0.0.1:{{port}} ssl; ssl_protocols TLSv1.2 TLSv1.3; ssl_certificate {}; ssl_certificate_key {}; ssl_client_certificate {}; ssl_verify_client optional; location / {{ return 200 \"ok\\n\"; }} }}",
        cert.display(),
        key.display(),
        ca_file.display()
    );
    Some(Nginx::start_server(&bin, "https", http, &server).unwrap())
}

#[test]
fn an_https_scenario_runs_with_pool_addresses_and_tenant_identities() {
    let d = tmp("run");
    let ca = Ca::new("scenario CA").unwrap();
    let Some(ng) = nginx_tls(&d, &ca) else { return };
    // Files next to the scenario, named relative to it.
    write(&d, "ca.pem", &ca.cert_pem);
    let client = ca.client("tenant-a").unwrap();
    write(&d, "a.pem", &client.cert_pem);
    write(&d, "a.key", &client.key_pem);
    let scenario = format!(
        r#"
version: "1.0"
name: https
workbook:
  ip_pools:
    - {{ id: pa, ranges: ["127.0.41.0/24"] }}
    - {{ id: pb, ranges: ["127.0.42.0/24"] }}
tls:
  ca_file: ca.pem
  min_version: "1.2"
  tenants:
    tenant-a: {{ client_cert: a.pem, client_key: a.key }}
load:
  ramp_up:
    phases:
      - {{ at_second: 0, spawn_users: 3, tenant_id: tenant-a, ip_pool_override: pa }}
      - {{ at_second: 0, spawn_users: 2, tenant_id: tenant-b, ip_pool_override: pb }}
  user_lifetime: {{ mode: loop, iterations: 3 }}
  user_resources:
    ip_binding: {{ enabled: true, pool_id: pa, strategy: per_user, release_on: user_exit }}
actions:
  actions:
    - id: get
      call: get
      with: {{ url: "https://127.0.0.1:{}/x", bind_ip: "{{{{user.allocated_ip}}}}" }}
workflows:
  nodes:
    - {{ id: start, type: action, action: get, edges: [ {{ to: end }} ] }}
    - {{ id: end, type: end }}
"#,
        ng.port
    );
    let path = write(&d, "s.yaml", &scenario);
    let json = d.join("r.json");
    let out = run(&["validate", path.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = run(&[
        "run",
        path.to_str().unwrap(),
        "--json",
        json.to_str().unwrap(),
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("TLS handshakes 5"), "{text}");
    let report: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(report["totals"]["requests"], 15);
    assert_eq!(report["totals"]["ok"], 15);
    assert_eq!(report["tls"]["handshakes"], 5);
    assert_eq!(report["tls"]["verified"], true);

    let log = access_log(&ng, 15);
    let lines: Vec<Vec<&str>> = log.lines().map(|l| l.split(' ').collect()).collect();
    assert_eq!(lines.len(), 15, "{log}");
    // Each user (a connection) from its tenant's pool, over TLS 1.3, its three requests on
    // one connection; tenant-a's users show their client certificate, tenant-b's none. (Two
    // users may have had the same address one after the other: it goes back at a user's end.)
    let mut by_conn = std::collections::BTreeMap::<&str, Vec<&Vec<&str>>>::new();
    for l in &lines {
        by_conn.entry(l[1]).or_default().push(l);
    }
    assert_eq!(by_conn.len(), 5, "{log}");
    for (conn, ls) in by_conn {
        assert_eq!(ls.len(), 3, "{conn}: {log}");
        let ip = ls[0][0];
        assert!(ls.iter().all(|l| l[0] == ip && l[3] == "TLSv1.3"), "{log}");
        let counts: Vec<&str> = ls.iter().map(|l| l[2]).collect();
        assert_eq!(counts, ["1", "2", "3"], "{ip}: keep-alive over TLS");
        if ip.starts_with("127.0.41.") {
            assert!(ls.iter().all(|l| l[4].contains("CN=tenant-a")), "{log}");
        } else {
            assert!(ip.starts_with("127.0.42."), "{log}");
            assert!(ls.iter().all(|l| l[4] == "-"), "{log}");
        }
    }

    // validate refuses what run would: a CA file that is not there, a bad version.
    let bad = scenario.replace("ca_file: ca.pem", "ca_file: missing.pem");
    let path = write(&d, "bad.yaml", &bad);
    let out = run(&["validate", path.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("missing.pem"), "{err}");
    let bad = scenario.replace("min_version: \"1.2\"", "min_version: \"1.1\"");
    let path = write(&d, "bad2.yaml", &bad);
    let out = run(&["validate", path.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("tls.min_version"), "{err}");
}

#[test]
fn exec_takes_curls_tls_flags() {
    let d = tmp("exec");
    let ca = Ca::new("exec CA").unwrap();
    let Some(ng) = nginx_tls(&d, &ca) else { return };
    let url = format!("https://127.0.0.1:{}/e", ng.port);
    let ca_file = write(&d, "ca.pem", &ca.cert_pem);
    // Not trusted: a typed error, curl's exit code 60.
    let out = run(&["exec", &url]);
    assert_eq!(out.status.code(), Some(60));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("tls(unknown-issuer)"), "{err}");
    // --cacert
    let out = run(&[
        "exec",
        &url,
        "--cacert",
        ca_file.to_str().unwrap(),
        "--json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["status"], 200);
    assert_eq!(v["tls"]["version"], "TLSv1.3");
    assert_eq!(v["tls"]["verified"], true);
    assert!(v["timings_us"]["tls"].as_u64().unwrap() > 0);
    // -k, and --tls-max
    let out = run(&["exec", "-k", "--tls-max", "1.2", &url, "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["tls"]["version"], "TLSv1.2");
    assert_eq!(v["tls"]["verified"], false);
    // --cert / --key: nginx sees the client's name.
    let client = ca.client("exec-user").unwrap();
    let cert = write(&d, "c.pem", &client.cert_pem);
    let key = write(&d, "c.key", &client.key_pem);
    let out = run(&[
        "exec",
        &url,
        "--cacert",
        ca_file.to_str().unwrap(),
        "--cert",
        cert.to_str().unwrap(),
        "--key",
        key.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Requests so far: --cacert, -k, and this one (the untrusted one never got there).
    let log = access_log(&ng, 3);
    assert!(
        log.lines().last().unwrap().contains("CN=exec-user"),
        "{log}"
    );
    // --cert without --key is a usage error.
    let out = run(&["exec", &url, "--cert", cert.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
}

/// `openssl req -x509`'s certificate (a CA by its basic constraints, as openssl makes it) and
/// key for `names` (`DNS:localhost,IP:127.0.0.1`), in `d`; `None` where openssl is missing,
/// unless REQUIRE_OPENSSL is set (as in CI).
fn openssl_self_signed(d: &Path, file: &str, names: &str) -> Option<(PathBuf, PathBuf)> {
    let (cert, key) = (d.join(format!("{file}.pem")), d.join(format!("{file}.key")));
    let made = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
        ])
        .args(["-nodes", "-days", "2", "-subj", "/CN=self-signed"])
        .args(["-addext", &format!("subjectAltName={names}")])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output();
    match made {
        Ok(out) if out.status.success() => Some((cert, key)),
        Ok(out) => panic!("openssl req: {}", String::from_utf8_lossy(&out.stderr)),
        Err(_) => {
            assert!(
                std::env::var("REQUIRE_OPENSSL").is_err(),
                "REQUIRE_OPENSSL is set but openssl is not installed"
            );
            eprintln!("SKIPPED: openssl is not installed");
            None
        }
    }
}

/// nginx serving `cert` and `key` over TLS.
fn nginx_serving(name: &str, (cert, key): &(PathBuf, PathBuf)) -> Option<Nginx> {
    let bin = nginx::binary_or_skip()?;
    let server = format!(
        "server {{ listen 127.0.0.1:{{port}} ssl; ssl_certificate {}; ssl_certificate_key {}; location / {{ return 200 \"ok\\n\"; }} }}",
        cert.display(),
        key.display(),
    );
    Some(Nginx::start_server(&bin, name, "", &server).unwrap())
}

/// A server whose certificate is its own CA file (what `openssl req -x509` makes) is trusted
/// with that file as `--cacert`, as curl (OpenSSL) trusts it; under another name, or with
/// another such file, it is refused as curl refuses it (60).
#[test]
fn exec_trusts_a_servers_own_certificate_given_as_its_ca_file() {
    let d = tmp("self-signed");
    let Some(own) = openssl_self_signed(&d, "own", "DNS:localhost,IP:127.0.0.1") else {
        return;
    };
    let Some(elsewhere) = openssl_self_signed(&d, "elsewhere", "DNS:elsewhere.example") else {
        return;
    };
    let Some(ng) = nginx_serving("self-signed", &own) else {
        return;
    };
    let Some(ng_elsewhere) = nginx_serving("self-signed-elsewhere", &elsewhere) else {
        return;
    };
    let url = format!("https://127.0.0.1:{}/", ng.port);
    let (own_ca, elsewhere_ca) = (own.0.to_str().unwrap(), elsewhere.0.to_str().unwrap());
    let out = run(&["exec", &url, "--cacert", own_ca, "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (v["status"].as_u64(), v["tls"]["verified"].as_bool()),
        (Some(200), Some(true))
    );
    // By name, resolved to the address nginx listens on.
    let resolve = format!("localhost:{}:127.0.0.1", ng.port);
    let by_name = format!("https://localhost:{}/", ng.port);
    let out = run(&["exec", &by_name, "--resolve", &resolve, "--cacert", own_ca]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let other_port = format!("https://127.0.0.1:{}/", ng_elsewhere.port);
    for (url, flags, reason) in [
        (&url, vec![], "unknown-issuer"),
        (&url, vec!["--cacert", elsewhere_ca], "unknown-issuer"),
        (&other_port, vec!["--cacert", elsewhere_ca], "name-mismatch"),
    ] {
        let out = run(&[&["exec", url.as_str()][..], &flags].concat());
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(60), "{url} {flags:?}: {err}");
        assert!(
            err.contains(&format!("tls({reason})")),
            "{url} {flags:?}: {err}"
        );
    }
}

/// TLS files `exec` cannot use fail with curl's codes before any connection is made (77 a CA
/// file, 58 a client certificate or key), and are not read for a plain `http:` URL, as curl
/// does not read them.
#[test]
fn exec_fails_unusable_tls_files_with_curls_codes() {
    use std::io::{Read, Write};
    let d = tmp("tls-files");
    let not_pem = write(&d, "not.pem", "not a certificate\n");
    let missing = d.join("missing.pem");
    let (missing, not_pem) = (missing.to_str().unwrap(), not_pem.to_str().unwrap());
    let untouched = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let https = format!(
        "https://127.0.0.1:{}/",
        untouched.local_addr().unwrap().port()
    );
    for (flags, code) in [
        (vec!["--cacert", missing], 77),
        (vec!["--cacert", not_pem], 77),
        (vec!["--cert", missing, "--key", missing], 58),
        (vec!["--cert", not_pem, "--key", not_pem], 58),
        // Both unusable: the client identity is read first, as curl reads it (curl 8 against
        // a listening port: 58 here, 58 with -k).
        (
            vec!["--cacert", missing, "--cert", missing, "--key", missing],
            58,
        ),
        (
            vec![
                "-k", "--cacert", missing, "--cert", missing, "--key", missing,
            ],
            58,
        ),
        // No version meets both bounds: curl fails the handshake (35).
        (vec!["--tlsv1.3", "--tls-max", "1.2"], 35),
    ] {
        let out = run(&[&["exec", https.as_str()][..], &flags].concat());
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(code), "{flags:?}: {err}");
        assert!(err.contains(&format!("({code})")), "{flags:?}: {err}");
    }
    untouched.set_nonblocking(true).unwrap();
    assert!(untouched.accept().is_err(), "a connection was made");

    let plain = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let http = format!("http://127.0.0.1:{}/", plain.local_addr().unwrap().port());
    let server = std::thread::spawn(move || {
        let (mut c, _) = plain.accept().unwrap();
        let mut head = Vec::new();
        let mut b = [0u8; 1024];
        while !head.ends_with(b"\r\n\r\n") {
            let n = c.read(&mut b).unwrap();
            assert!(n > 0, "the request ended early");
            head.extend_from_slice(&b[..n]);
        }
        c.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
            .unwrap();
    });
    let out = run(&[
        "exec", &http, "--cacert", missing, "--cert", not_pem, "--key", not_pem,
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.stdout, b"ok");
    server.join().unwrap();
}
