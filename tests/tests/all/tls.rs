//! HTTPS through the executor artifact: the socket component's TCP connection (bound to the
//! user's source address) handed to the host's TLS through `wasi:tls`. Against Debian's
//! `openssl s_server` and nginx with TLS (started here with certificates made here), and against
//! in-process rustls servers for the faults.
//!
//! `.ci/run` installs openssl and nginx. Where one is missing its tests say so and pass, unless
//! REQUIRE_NGINX=1 (as in CI), where they fail.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use compose::tls::pki::{Ca, Validity};
use compose::tls::{TlsSettings, TlsVersion};
use integration_tests::executor_bindings::exports::scheduler::executor::executor::TlsReason;
use integration_tests::*;
use serde_json::json;
use sha2::{Digest, Sha256};

fn dir(name: &str) -> scratch::Scratch {
    scratch::Scratch::new(&format!("tls-{name}"))
}

fn write(d: &Path, name: &str, text: &str) -> PathBuf {
    let p = d.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

fn required(tool: &str) -> bool {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
        || Path::new(&format!("/usr/sbin/{tool}")).exists();
    if !found {
        assert!(
            std::env::var("REQUIRE_NGINX").is_err(),
            "REQUIRE_NGINX is set but {tool} is not installed"
        );
        eprintln!("SKIPPED: {tool} is not installed");
    }
    found
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn wait_port(port: u16) {
    let start = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "server did not start"
        );
        std::thread::sleep(Duration::from_millis(30));
    }
}

/// `openssl s_server -www` on a free port; killed on drop.
struct SServer(Child, u16);

impl SServer {
    fn start(cert: &Path, key: &Path, extra: &[&str]) -> SServer {
        let port = free_port();
        let child = Command::new("openssl")
            .args(["s_server", "-quiet", "-www", "-accept"])
            .arg(format!("127.0.0.1:{port}"))
            .arg("-cert")
            .arg(cert)
            .arg("-key")
            .arg(key)
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("openssl s_server");
        wait_port(port);
        SServer(child, port)
    }
}

impl Drop for SServer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn trusting(ca: &Path) -> TlsSettings {
    TlsSettings {
        ca_files: vec![ca.to_path_buf()],
        ..TlsSettings::default()
    }
}

fn tls_reason(r: Result<Outcome, ActionError>) -> TlsReason {
    match r {
        Err(ActionError::Tls(t)) => t.reason,
        other => panic!("expected a TLS error, got {other:?}"),
    }
}

/// An RSA server certificate for 127.0.0.1 signed by `ca` (rcgen with ring makes no RSA keys:
/// openssl does).
fn rsa_leaf(d: &Path, ca: &Ca) -> (PathBuf, PathBuf) {
    let ca_cert = write(d, "rsa-ca.pem", &ca.cert_pem);
    let ca_key = write(d, "rsa-ca.key", &ca.key_pem);
    let ext = write(
        d,
        "rsa.ext",
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n",
    );
    let (key, csr, cert) = (d.join("rsa.key"), d.join("rsa.csr"), d.join("rsa.pem"));
    let ok = Command::new("openssl")
        .args([
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=127.0.0.1",
            "-keyout",
        ])
        .arg(&key)
        .arg("-out")
        .arg(&csr)
        .stderr(Stdio::null())
        .status()
        .unwrap()
        .success()
        && Command::new("openssl")
            .args(["x509", "-req", "-days", "2", "-in"])
            .arg(&csr)
            .arg("-CA")
            .arg(&ca_cert)
            .arg("-CAkey")
            .arg(&ca_key)
            .arg("-CAcreateserial")
            .arg("-extfile")
            .arg(&ext)
            .arg("-out")
            .arg(&cert)
            .stderr(Stdio::null())
            .status()
            .unwrap()
            .success();
    assert!(ok, "openssl made the RSA certificate");
    (cert, key)
}

#[test]
fn tls13_and_tls12_servers_with_ecdsa_and_rsa_certificates() {
    if !required("openssl") {
        return;
    }
    let d = dir("versions");
    let ca = Ca::new("test CA").unwrap();
    let ca_file = write(&d, "ca.pem", &ca.cert_pem);
    let leaf = ca
        .server(&["localhost", "127.0.0.1"], Validity::Now)
        .unwrap();
    let ecdsa = (
        write(&d, "ec.pem", &leaf.cert_pem),
        write(&d, "ec.key", &leaf.key_pem),
    );
    let rsa = rsa_leaf(&d, &ca);
    for (cert, kind) in [(&ecdsa, "ECDSA"), (&rsa, "RSA")] {
        for (flag, version) in [("-tls1_3", "TLSv1.3"), ("-tls1_2", "TLSv1.2")] {
            let server = SServer::start(&cert.0, &cert.1, &[flag]);
            let (mut ex, last) = Executor::with_tls(&trusting(&ca_file));
            let o = ex
                .get(&format!("https://127.0.0.1:{}/", server.1))
                .unwrap_or_else(|e| panic!("{kind} {version}: {e:?}"));
            assert_eq!(o.status, 200);
            // s_server -www answers with the session it negotiated.
            let body = String::from_utf8_lossy(&o.body);
            assert!(
                body.contains(&format!("Protocol  : {version}")),
                "{kind} {version}: {body}"
            );
            assert!(o.timings.tls_us > 0);
            let n = last.lock().unwrap().clone().unwrap();
            assert_eq!(n.version, version);
            if kind == "RSA" && version == "TLSv1.2" {
                assert!(n.cipher_suite.contains("RSA"), "{}", n.cipher_suite);
            }
        }
    }
    // A client capped at TLS 1.2 against a TLS 1.3-only server: protocol-version.
    let server = SServer::start(&ecdsa.0, &ecdsa.1, &["-tls1_3"]);
    let mut settings = trusting(&ca_file);
    settings.max_version = Some(TlsVersion::Tls12);
    let (mut ex, _) = Executor::with_tls(&settings);
    let r = ex.get(&format!("https://127.0.0.1:{}/", server.1));
    assert_eq!(tls_reason(r), TlsReason::ProtocolVersion);
}

#[test]
fn mtls_required_by_s_server_without_and_with_a_client_certificate() {
    if !required("openssl") {
        return;
    }
    let d = dir("mtls");
    let ca = Ca::new("test CA").unwrap();
    let ca_file = write(&d, "ca.pem", &ca.cert_pem);
    let leaf = ca.server(&["127.0.0.1"], Validity::Now).unwrap();
    let client = ca.client("user-7").unwrap();
    let cert = write(&d, "s.pem", &leaf.cert_pem);
    let key = write(&d, "s.key", &leaf.key_pem);
    for flag in ["-tls1_3", "-tls1_2"] {
        // -Verify: a client certificate is required.
        let server = SServer::start(
            &cert,
            &key,
            &[flag, "-Verify", "1", "-CAfile", ca_file.to_str().unwrap()],
        );
        let url = format!("https://127.0.0.1:{}/", server.1);
        let (mut ex, _) = Executor::with_tls(&trusting(&ca_file));
        let reason = tls_reason(ex.get(&url));
        assert!(
            matches!(
                reason,
                TlsReason::CertificateRequired | TlsReason::HandshakeFailure
            ),
            "{flag}: {reason:?}"
        );
        let mut settings = trusting(&ca_file);
        settings.client_identity = Some((
            write(&d, "c.pem", &client.cert_pem),
            write(&d, "c.key", &client.key_pem),
        ));
        let (mut ex, _) = Executor::with_tls(&settings);
        let o = ex.get(&url).unwrap();
        assert_eq!(o.status, 200);
        let body = String::from_utf8_lossy(&o.body);
        assert!(body.contains("user-7"), "{flag}: {body}");
    }
}

fn nginx_tls(name: &str, cert: &Path, key: &Path, extra: &str) -> Option<nginx::Nginx> {
    let bin = nginx::binary()?;
    let http = "log_format probe '$remote_addr $connection $connection_requests $ssl_session_reused $ssl_server_name $ssl_protocol $ssl_client_s_dn $request $status';\n    access_log {dir}/logs/access.log probe;\n    keepalive_requests 1000;\n    ssl_session_cache shared:SSL:1m;";
    let server = format!(
        "server {{ listen 127.0.0.1:{{port}} ssl; ssl_protocols TLSv1.2 TLSv1.3; ssl_certificate {}; ssl_certificate_key {}; {extra} location / {{ return 200 \"hello over tls\\n\"; }} }}",
        cert.display(),
        key.display()
    );
    Some(nginx::Nginx::start_server(&bin, name, http, &server).unwrap())
}

/// nginx's access log once it has at least `n` lines (it writes a request's line after the
/// response has gone, so a client can be faster than the log), or after 10 s.
fn access_log(ng: &nginx::Nginx, n: usize) -> Vec<Vec<String>> {
    let start = Instant::now();
    loop {
        let lines: Vec<Vec<String>> = std::fs::read_to_string(ng.dir.join("logs/access.log"))
            .unwrap_or_default()
            .lines()
            .map(|l| l.split(' ').map(str::to_string).collect())
            .collect();
        if lines.len() >= n || start.elapsed() > Duration::from_secs(10) {
            return lines;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn nginx_sees_pool_addresses_reuse_resumption_and_sni_over_tls() {
    if !required("nginx") {
        return;
    }
    let d = dir("nginx");
    let ca = Ca::new("test CA").unwrap();
    let ca_file = write(&d, "ca.pem", &ca.cert_pem);
    let leaf = ca
        .server(&["localhost", "127.0.0.1", "api.test"], Validity::Now)
        .unwrap();
    let cert = write(&d, "s.pem", &leaf.cert_pem);
    let key = write(&d, "s.key", &leaf.key_pem);
    let ng = nginx_tls("tls", &cert, &key, "").unwrap();
    let url = format!("https://127.0.0.1:{}/probe", ng.port);

    let (mut ex, last) = Executor::with_tls(&trusting(&ca_file));
    ex.create_pool("p", "127.0.21.0/24");
    let mut used = Vec::new();
    for user in 0..2 {
        let b = ex.allocate("p", &format!("user-{user}"));
        for i in 0..4 {
            let o = ex
                .run(
                    HttpMethod::Get,
                    json!({ "url": url, "bind_ip": b.ip }),
                    vec![],
                )
                .unwrap();
            assert_eq!(
                (o.status, o.body.as_slice()),
                (200, &b"hello over tls\n"[..])
            );
            assert_eq!(o.reused_connection, i > 0);
            assert_eq!(
                o.timings.tls_us == 0,
                i > 0,
                "a reused connection has no handshake"
            );
        }
        used.push(b.ip);
    }
    // A new connection for each request: the second resumes the first's session.
    for _ in 0..2 {
        let o = ex
            .run(
                HttpMethod::Get,
                json!({ "url": url, "keep_alive": false }),
                vec![],
            )
            .unwrap();
        assert_eq!(o.status, 200);
    }
    assert!(last.lock().unwrap().as_ref().unwrap().resumed);
    // Another user's instance has sessions of its own: its first handshake is a full one.
    let (mut other, other_last) = Executor::with_tls(&trusting(&ca_file));
    assert_eq!(
        other
            .get(&format!("https://127.0.0.1:{}/other", ng.port))
            .unwrap()
            .status,
        200
    );
    assert!(!other_last.lock().unwrap().as_ref().unwrap().resumed);
    // SNI: a host name is sent; an IP literal sends none; the parameter overrides.
    let by_name = format!("https://localhost:{}/sni", ng.port);
    assert_eq!(ex.get(&by_name).unwrap().status, 200);
    let o = ex
        .run(
            HttpMethod::Get,
            json!({ "url": format!("https://127.0.0.1:{}/override", ng.port), "tls": { "server_name": "api.test" } }),
            vec![],
        )
        .unwrap();
    assert_eq!(o.status, 200);

    let log = access_log(&ng, 13);
    let probes: Vec<_> = log.iter().filter(|l| l[8].starts_with("/probe")).collect();
    assert_eq!(probes.len(), 10, "{log:?}");
    for (user, ip) in used.iter().enumerate() {
        let lines: Vec<_> = probes[user * 4..user * 4 + 4].to_vec();
        assert!(lines.iter().all(|l| &l[0] == ip), "{lines:?}");
        // One connection per user, its requests counted 1..4 by nginx.
        assert!(lines.iter().all(|l| l[1] == lines[0][1]));
        let counts: Vec<&str> = lines.iter().map(|l| l[2].as_str()).collect();
        assert_eq!(counts, ["1", "2", "3", "4"]);
        assert!(lines.iter().all(|l| l[5] == "TLSv1.3"));
    }
    assert_eq!(
        probes[0][3], ".",
        "the user's first session is a full handshake"
    );
    assert_eq!(
        (probes[8][3].as_str(), probes[9][3].as_str()),
        ("r", "r"),
        "new connections of the same user resume: {log:?}"
    );
    let other = log.iter().find(|l| l[8].starts_with("/other")).unwrap();
    assert_eq!(other[3], ".", "no session crosses to another user");
    let sni = |path: &str| log.iter().find(|l| l[8].starts_with(path)).unwrap()[4].clone();
    assert_eq!(sni("/probe"), "-", "an IP literal sends no SNI");
    assert_eq!(sni("/sni"), "localhost");
    assert_eq!(sni("/override"), "api.test");
}

#[test]
fn verification_failures_are_typed_and_nothing_is_sent() {
    if !required("nginx") {
        return;
    }
    let d = dir("verify");
    let ca = Ca::new("test CA").unwrap();
    let ca_file = write(&d, "ca.pem", &ca.cert_pem);
    let cases = [
        (
            "unknown",
            ["127.0.0.1"],
            Validity::Now,
            false,
            TlsReason::UnknownIssuer,
        ),
        (
            "name",
            ["other.test"],
            Validity::Now,
            true,
            TlsReason::NameMismatch,
        ),
        (
            "expired",
            ["127.0.0.1"],
            Validity::Expired,
            true,
            TlsReason::Expired,
        ),
        (
            "notyet",
            ["127.0.0.1"],
            Validity::NotYet,
            true,
            TlsReason::NotYetValid,
        ),
    ];
    for (name, names, validity, trust, want) in cases {
        let leaf = ca.server(&names, validity).unwrap();
        let cert = write(&d, &format!("{name}.pem"), &leaf.cert_pem);
        let key = write(&d, &format!("{name}.key"), &leaf.key_pem);
        let ng = nginx_tls(name, &cert, &key, "").unwrap();
        let settings = if trust {
            trusting(&ca_file)
        } else {
            TlsSettings::default()
        };
        let (mut ex, _) = Executor::with_tls(&settings);
        let url = format!("https://127.0.0.1:{}/secret", ng.port);
        assert_eq!(tls_reason(ex.get(&url)), want, "{name}");
        // insecure: the same server answers.
        let (mut ex, _) = Executor::with_tls(&TlsSettings {
            insecure: true,
            ..TlsSettings::default()
        });
        assert_eq!(
            ex.get(&format!("https://127.0.0.1:{}/insecure", ng.port))
                .unwrap()
                .status,
            200
        );
        let log = access_log(&ng, 1);
        assert!(
            log.iter().all(|l| !l[8].starts_with("/secret")),
            "{name}: the request reached the server: {log:?}"
        );
    }
}

#[test]
fn nginx_mtls_and_a_redirect_from_http_to_https() {
    if !required("nginx") {
        return;
    }
    let d = dir("mtls-nginx");
    let ca = Ca::new("test CA").unwrap();
    let ca_file = write(&d, "ca.pem", &ca.cert_pem);
    let leaf = ca.server(&["127.0.0.1"], Validity::Now).unwrap();
    let cert = write(&d, "s.pem", &leaf.cert_pem);
    let key = write(&d, "s.key", &leaf.key_pem);
    let client = ca.client("tenant-a").unwrap();
    let ng = nginx_tls(
        "mtls",
        &cert,
        &key,
        &format!(
            "ssl_client_certificate {}; ssl_verify_client on;",
            ca_file.display()
        ),
    )
    .unwrap();
    let url = format!("https://127.0.0.1:{}/m", ng.port);
    // nginx finishes the handshake and answers 400 without a certificate.
    let (mut ex, _) = Executor::with_tls(&trusting(&ca_file));
    assert_eq!(ex.get(&url).unwrap().status, 400);
    let mut settings = trusting(&ca_file);
    settings.client_identity = Some((
        write(&d, "c.pem", &client.cert_pem),
        write(&d, "c.key", &client.key_pem),
    ));
    let (mut ex, _) = Executor::with_tls(&settings);
    assert_eq!(ex.get(&url).unwrap().status, 200);
    let log = access_log(&ng, 2);
    assert!(log.last().unwrap()[6].contains("CN=tenant-a"), "{log:?}");

    // http -> https: a plain nginx redirects to the TLS one; the Location is followed.
    let bin = nginx::binary().unwrap();
    let plain = nginx::Nginx::start_server(
        &bin,
        "redirect",
        "",
        &format!(
            "server {{ listen 127.0.0.1:{{port}}; location / {{ return 301 https://127.0.0.1:{}$request_uri; }} }}",
            ng.port
        ),
    )
    .unwrap();
    let o = ex
        .get(&format!("http://127.0.0.1:{}/m?from=http", plain.port))
        .unwrap();
    assert_eq!((o.status, o.redirects), (200, 1));
    assert_eq!(
        o.final_url,
        format!("https://127.0.0.1:{}/m?from=http", ng.port)
    );
}

/// An in-process TLS server: each connection is handed to `serve` after the handshake (or,
/// with `raw`, before any TLS).
fn rustls_server(
    leaf: &compose::tls::pki::Leaf,
    serve: impl Fn(&mut dyn ReadWrite) + Send + Sync + 'static,
) -> u16 {
    let config = leaf.server_config().unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let serve = Arc::new(serve);
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let (config, serve) = (config.clone(), serve.clone());
            std::thread::spawn(move || {
                let _ = stream.set_read_timeout(Some(Duration::from_secs(20)));
                let conn = rustls::ServerConnection::new(config).unwrap();
                let mut tls = rustls::StreamOwned::new(conn, stream);
                // The handshake first.
                while tls.conn.is_handshaking() {
                    if tls.conn.complete_io(&mut tls.sock).is_err() {
                        return;
                    }
                }
                serve(&mut tls);
            });
        }
    });
    port
}

trait ReadWrite: Read + Write {}
impl<T: Read + Write> ReadWrite for T {}

/// Bytes `n` long, the same for the same `n` and seed.
fn pattern(n: usize, seed: u8) -> Vec<u8> {
    (0..n)
        .map(|i| (i as u32).wrapping_mul(2_654_435_761).to_le_bytes()[0] ^ seed)
        .collect()
}

#[test]
fn ten_megabytes_each_way_and_servers_that_close_or_stall() {
    let ca = Ca::new("test CA").unwrap();
    let d = dir("bulk");
    let ca_file = write(&d, "ca.pem", &ca.cert_pem);
    let leaf = ca.server(&["127.0.0.1"], Validity::Now).unwrap();
    const N: usize = 10 << 20;
    // Reads a request with a body, answers with the body's SHA-256 and N bytes of its own.
    let port = rustls_server(&leaf, |s| {
        let mut buf = Vec::new();
        let mut chunk = vec![0u8; 64 * 1024];
        let (head_len, len) = loop {
            let n = s.read(&mut chunk).unwrap_or(0);
            if n == 0 {
                return;
            }
            buf.extend_from_slice(&chunk[..n]);
            let mut h = [httparse::EMPTY_HEADER; 32];
            let mut req = httparse::Request::new(&mut h);
            if let Ok(httparse::Status::Complete(at)) = req.parse(&buf) {
                let len = req
                    .headers
                    .iter()
                    .find(|h| h.name.eq_ignore_ascii_case("content-length"))
                    .and_then(|h| std::str::from_utf8(h.value).ok()?.parse::<usize>().ok())
                    .unwrap_or(0);
                break (at, len);
            }
        };
        while buf.len() < head_len + len {
            let n = s.read(&mut chunk).unwrap_or(0);
            if n == 0 {
                return;
            }
            buf.extend_from_slice(&chunk[..n]);
        }
        let digest = hex(&Sha256::digest(&buf[head_len..head_len + len]));
        let body = pattern(N, 7);
        let head = format!(
            "HTTP/1.1 200 OK\r\nx-sha256: {digest}\r\ncontent-length: {}\r\n\r\n",
            body.len()
        );
        let _ = s.write_all(head.as_bytes());
        let _ = s.write_all(&body);
        let _ = s.flush();
    });
    let upload = pattern(N, 3);
    let (mut ex, _) = Executor::with_tls(&trusting(&ca_file));
    use base64::Engine as _;
    let o = ex
        .run(
            HttpMethod::Post,
            json!({
                "url": format!("https://127.0.0.1:{port}/bulk"),
                "body_base64": base64::engine::general_purpose::STANDARD.encode(&upload),
            }),
            vec![],
        )
        .unwrap();
    assert_eq!(o.status, 200);
    let sent = o
        .headers
        .iter()
        .find(|h| h.name == "x-sha256")
        .unwrap()
        .value
        .clone();
    assert_eq!(
        sent,
        hex(&Sha256::digest(&upload)),
        "the upload arrived intact"
    );
    assert_eq!(o.body.len(), N);
    assert!(o.body == pattern(N, 7), "the download arrived intact");
    // The same answer discarded: dropped in the socket component as TLS decrypts it, counted
    // whole.
    let params = json!({
        "url": format!("https://127.0.0.1:{port}/bulk"),
        "body_base64": "eA==",
        "discard_body": true,
    });
    let o = ex.run(HttpMethod::Post, params, vec![]).unwrap();
    assert_eq!((o.status, o.body_length, o.body.len()), (200, N as u64, 0));
    assert!(o.bytes_received > N as u64, "{}", o.bytes_received);

    // A server that closes right after the handshake: an error, not a hang.
    let closer = rustls_server(&leaf, |s| {
        let _ = s.flush();
    });
    let t = Instant::now();
    let r = ex.get(&format!("https://127.0.0.1:{closer}/"));
    assert!(r.is_err(), "{r:?}");
    assert!(t.elapsed() < Duration::from_secs(10));

    // A handshake that stalls: the server accepts and says nothing. Bounded by the connect
    // timeout, and reported as the TLS phase's timeout.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_port = silent.local_addr().unwrap().port();
    let t = Instant::now();
    let r = ex.run(
        HttpMethod::Get,
        json!({ "url": format!("https://127.0.0.1:{silent_port}/"), "timeouts": { "connect_ms": 400 } }),
        vec![],
    );
    assert!(
        matches!(r, Err(ActionError::Timeout(TimeoutPhase::Tls))),
        "{r:?}"
    );
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    drop(silent);
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The socket interface alone: TLS on a connected socket, then send, receive, the idle check,
/// shutdown and close above it; misuse named by state.
#[test]
fn the_socket_component_speaks_tls_after_start_tls() {
    let ca = Ca::new("test CA").unwrap();
    let d = dir("socket");
    let ca_file = write(&d, "ca.pem", &ca.cert_pem);
    let leaf = ca.server(&["127.0.0.1"], Validity::Now).unwrap();
    // Echoes lines; a line "bye" ends the connection with close_notify.
    let port = rustls_server(&leaf, |s| {
        let mut buf = [0u8; 4096];
        loop {
            let n = match s.read(&mut buf) {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            if &buf[..n] == b"bye\n" {
                return;
            }
            if s.write_all(&buf[..n]).and_then(|()| s.flush()).is_err() {
                return;
            }
        }
    });
    let (mut g, last) = SocketGuest::with_tls(&trusting(&ca_file));
    let addr = SocketAddress {
        host: "127.0.0.1".into(),
        port,
    };
    // Not before a connection, not on UDP.
    let s = g.tcp4();
    assert!(matches!(
        g.start_tls(s, "127.0.0.1"),
        Err(SocketError::InvalidState(_))
    ));
    let u = g.udp4();
    assert!(matches!(
        g.start_tls(u, "127.0.0.1"),
        Err(SocketError::NotSupported(_))
    ));
    g.connect(s, &addr).unwrap();
    assert!(!g.is_tls(s));
    g.start_tls(s, "127.0.0.1").unwrap();
    assert!(g.is_tls(s));
    assert!(matches!(
        g.start_tls(s, "127.0.0.1"),
        Err(SocketError::InvalidState(_))
    ));
    assert_eq!(last.lock().unwrap().as_ref().unwrap().version, "TLSv1.3");
    assert_eq!(g.send(s, b"one\n").unwrap(), 4);
    assert_eq!(g.receive(s, 100).unwrap(), b"one\n");
    // TLS 1.3 session tickets came after the handshake: bytes on the wire, none above TLS;
    // the connection is idle.
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(g.send_receive(s, b"two\n", 100, true).unwrap(), b"two\n");
    g.set_read_timeout(s, 0).unwrap();
    assert!(matches!(g.try_receive(s, 10), Err(SocketError::WouldBlock)));
    g.set_read_timeout(s, 5_000).unwrap();
    // The server ends the connection: an empty read.
    g.send(s, b"bye\n").unwrap();
    assert_eq!(g.receive(s, 100).unwrap(), b"");
    g.close(s).unwrap();
    g.drop_socket(s);

    // A name the certificate does not carry: a typed failure, and the socket is closed.
    let s = g.tcp4();
    g.connect(s, &addr).unwrap();
    match g.start_tls(s, "wrong.test") {
        Err(SocketError::Tls(TlsError { reason, message })) => {
            assert_eq!(reason, SocketTlsReason::NameMismatch, "{message}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(g.state(s), SocketState::Closed);
    g.drop_socket(s);
    // Shutdown over TLS sends close_notify: the server's read ends.
    let s = g.tcp4();
    g.connect(s, &addr).unwrap();
    g.start_tls(s, "127.0.0.1").unwrap();
    g.shutdown(s, ShutdownType::Send).unwrap();
    assert_eq!(g.receive(s, 100).unwrap(), b"");
    g.drop_socket(s);
    // A server that speaks first: a receive before any send finishes the handshake's last
    // flight (held for the first send) and gets the greeting.
    let greeter = rustls_server(&leaf, |s| {
        let _ = s.write_all(b"hi\n").and_then(|()| s.flush());
        let mut b = [0u8; 16];
        let _ = s.read(&mut b);
    });
    let s = g.tcp4();
    g.connect(
        s,
        &SocketAddress {
            host: "127.0.0.1".into(),
            port: greeter,
        },
    )
    .unwrap();
    g.start_tls(s, "127.0.0.1").unwrap();
    assert_eq!(g.receive(s, 100).unwrap(), b"hi\n");
    g.drop_socket(s);
    g.drop_socket(u);
}

/// An in-process TLS server (its CA in a new directory `name`) that sends `data` once asked
/// with "go\n": the directory, the CA file and the port.
fn sender_on_go(name: &str, data: &[u8]) -> (scratch::Scratch, PathBuf, u16) {
    let ca = Ca::new("test CA").unwrap();
    let d = dir(name);
    let ca_file = write(&d, "ca.pem", &ca.cert_pem);
    let leaf = ca.server(&["127.0.0.1"], Validity::Now).unwrap();
    let sent = data.to_vec();
    let port = rustls_server(&leaf, move |s| {
        let mut go = [0u8; 3];
        if s.read_exact(&mut go).is_ok() {
            let _ = s.write_all(&sent).and_then(|()| s.flush());
        }
    });
    (d, ca_file, port)
}

/// A socket guest on `linker` trusting `ca_file`, connected over TLS to `port` and having
/// asked it with "go\n".
fn asking_over_tls(
    linker: &wasmtime::component::Linker<Ctx>,
    ca_file: &Path,
    port: u16,
) -> (SocketGuest, wasmtime::component::ResourceAny) {
    let (mut g, _) = SocketGuest::with_tls_on(&trusting(ca_file), linker);
    let s = g.tcp4();
    let addr = SocketAddress {
        host: "127.0.0.1".into(),
        port,
    };
    g.connect(s, &addr).unwrap();
    g.start_tls(s, "127.0.0.1").unwrap();
    g.send(s, b"go\n").unwrap();
    (g, s)
}

/// A read of the TLS stream decrypts every record already buffered, up to the size asked for:
/// with 256 KiB waiting, reads of 64 KiB return more than one record (16 KiB) each, and the
/// bytes come whole and in order.
#[test]
fn a_tls_read_takes_every_record_buffered() {
    let data = pattern(256 << 10, 7);
    let (_dir, ca_file, port) = sender_on_go("records", &data);
    let (mut g, s) = asking_over_tls(integration_tests::linker(), &ca_file, port);
    // All of it in the socket's buffers before the first read.
    std::thread::sleep(Duration::from_millis(300));
    let (mut got, mut largest) = (Vec::new(), 0);
    while got.len() < data.len() {
        let chunk = g.receive(s, 64 << 10).unwrap();
        assert!(!chunk.is_empty(), "ended after {} bytes", got.len());
        largest = largest.max(chunk.len());
        got.extend_from_slice(&chunk);
    }
    assert!(got == data, "the bytes differ");
    assert!(
        largest > 16 << 10,
        "no read took more than a record: {largest}"
    );
    g.drop_socket(s);
}

/// A TLS read copies the plaintext from rustls straight into the guest's list: with 1 MiB
/// waiting, read in 64 KiB pieces, the host makes no plaintext buffer of its own; wasmtime-wasi's
/// `read`, linked instead, makes one for every read (the ciphertext's buffers are the same on
/// both). The bytes come whole and in order on both.
#[test]
fn tls_reads_land_in_the_guests_memory() {
    let data = pattern(1 << 20, 5);
    let (_dir, ca_file, port) = sender_on_go("direct-read", &data);
    let buffers = |linker| {
        let (mut g, s) = asking_over_tls(linker, &ca_file, port);
        let (mut got, mut reads) = (Vec::new(), 0);
        let (large, ()) = crate::alloc_count::large_allocations(16 << 10, || {
            while got.len() < data.len() {
                let chunk = g.receive(s, 64 << 10).unwrap();
                assert!(!chunk.is_empty(), "ended after {} bytes", got.len());
                reads += usize::from(chunk.len() >= 16 << 10);
                got.extend_from_slice(&chunk);
            }
        });
        g.drop_socket(s);
        assert!(got == data, "the bytes differ");
        (large, reads)
    };
    let (direct, _) = buffers(integration_tests::linker());
    let (copying, reads) = buffers(integration_tests::copying_tls_linker());
    assert!(reads >= 8, "{reads} reads of 16 KiB or more");
    assert!(
        direct + reads <= copying,
        "buffers of 16 KiB or more: {direct} direct, {copying} copying ({reads} large reads)"
    );
}

/// `scheduler-executor-portable.wasm` on a host without `wasi:tls`: it instantiates with WASI
/// alone, `http://` works, and `https://` is the typed `tls(unsupported)`.
#[test]
fn the_portable_artifact_runs_without_wasi_tls() {
    use integration_tests::http_server::{Reply, serve};
    use wasmtime::Store;
    use wasmtime::component::{Component, Linker};
    let server = serve("127.0.0.1:0", None, |_| {
        Reply::Full(200, vec![], b"plain".to_vec())
    });
    let mut linker: Linker<Ctx> = Linker::new(engine());
    wasmtime_wasi::p2::add_to_linker_sync(&mut linker).unwrap();
    compose::bound_stream_drops_sync(&mut linker).unwrap();
    let portable = Component::from_file(engine(), compose::EXECUTOR_PORTABLE_ARTIFACT).unwrap();
    // The main artifact needs wasi:tls; the portable one does not.
    let main = Component::from_file(engine(), compose::EXECUTOR_ARTIFACT).unwrap();
    assert!(linker.instantiate_pre(&main).is_err());
    let mut store = Store::new(engine(), Ctx::new(loopback_policy()));
    let ex = executor_bindings::SchedulerExecutor::instantiate(&mut store, &portable, &linker)
        .expect("the portable artifact instantiates without wasi:tls");
    let run = |store: &mut Store<Ctx>, url: String| {
        let action = executor_bindings::exports::scheduler::executor::executor::Action {
            id: "a".into(),
            call: HttpMethod::Get,
            with_params: json!({ "url": url }).to_string(),
            exports: vec![],
        };
        ex.scheduler_executor_executor()
            .call_execute_action(store, &action)
            .unwrap()
    };
    let o = run(&mut store, server.url("/")).unwrap();
    assert_eq!((o.status, o.body.as_slice()), (200, &b"plain"[..]));
    let r = run(&mut store, format!("https://{}/", server.addr));
    assert_eq!(tls_reason(r), TlsReason::Unsupported);
    // And plain HTTP still works after the refusal.
    assert_eq!(run(&mut store, server.url("/again")).unwrap().status, 200);
}
