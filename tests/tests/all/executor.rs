//! The composed scheduler-executor.wasm against in-process HTTP servers on loopback.

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use integration_tests::executor_bindings::exports::scheduler::core_libs::ip_pool as pool;
use integration_tests::http_server::{Reply, serve};
use integration_tests::*;
use serde_json::json;
use sha2::{Digest, Sha256};

fn echo_server() -> integration_tests::http_server::TestServer {
    serve("127.0.0.1:0", None, |r| {
        let mut body = format!("{} {} ", r.method, r.path).into_bytes();
        body.extend_from_slice(&r.body);
        Reply::Full(
            200,
            vec![
                ("X-Peer".into(), r.peer.ip().to_string()),
                ("Content-Type".into(), "text/plain".into()),
            ],
            body,
        )
    })
}

fn export(name: &str, source: ExportSource) -> ExportSpec {
    ExportSpec {
        name: name.into(),
        source,
    }
}

#[test]
fn every_method_with_headers_and_bodies() {
    let server = echo_server();
    let mut ex = Executor::new();
    for (m, name) in [
        (HttpMethod::Get, "GET"),
        (HttpMethod::Post, "POST"),
        (HttpMethod::Put, "PUT"),
        (HttpMethod::Patch, "PATCH"),
        (HttpMethod::Delete, "DELETE"),
        (HttpMethod::Options, "OPTIONS"),
    ] {
        let o = ex
            .run(
                m,
                json!({ "url": server.url("/m"), "body": "data", "headers": { "X-Test": "1" } }),
                vec![],
            )
            .unwrap();
        assert_eq!(o.status, 200);
        assert_eq!(
            String::from_utf8(o.body).unwrap(),
            format!("{name} /m data")
        );
    }
    let o = ex
        .run(HttpMethod::Head, json!({ "url": server.url("/h") }), vec![])
        .unwrap();
    assert_eq!((o.status, o.body.len()), (200, 0), "HEAD has no body");
    assert!(
        o.headers
            .iter()
            .any(|h| h.name.eq_ignore_ascii_case("content-length"))
    );
}

#[test]
fn post_json_with_exports() {
    let server = serve("127.0.0.1:0", None, |r| {
        assert_eq!(r.header("content-type"), Some("application/json"));
        let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        let body = json!({ "echo": v, "data": { "id": 42, "name": "x" } }).to_string();
        Reply::Full(
            201,
            vec![("X-Request-Id".into(), "abc".into())],
            body.into_bytes(),
        )
    });
    let mut ex = Executor::new();
    let o = ex
        .run(
            HttpMethod::Post,
            json!({ "url": server.url("/asset"), "headers": { "content-type": "application/json" }, "body": "{\"data\": \"test\"}" }),
            vec![
                export("status_code", ExportSource::StatusCode),
                export("rid", ExportSource::Header("x-request-id".into())),
                export("id", ExportSource::JsonPointer("/data/id".into())),
                export("echoed", ExportSource::JsonPointer("/echo/data".into())),
            ],
        )
        .unwrap();
    let get = |n: &str| {
        o.exports
            .iter()
            .find(|e| e.name == n)
            .unwrap()
            .value
            .clone()
    };
    assert_eq!(
        (get("status_code"), get("rid"), get("id"), get("echoed")),
        ("201".into(), "abc".into(), "42".into(), "test".into())
    );
    // Discarded headers and body: the exports still read them.
    let o = ex
        .run(
            HttpMethod::Post,
            json!({ "url": server.url("/asset"), "body": { "data": "x" }, "discard_headers": true, "discard_body": true }),
            vec![
                export("rid", ExportSource::Header("x-request-id".into())),
                export("echoed", ExportSource::JsonPointer("/echo/data".into())),
            ],
        )
        .unwrap();
    assert!(o.headers.is_empty() && o.trailers.is_empty() && o.body.is_empty());
    assert!(o.body_length > 0);
    let values: Vec<_> = o.exports.iter().map(|e| e.value.as_str()).collect();
    assert_eq!(values, ["abc", "x"]);
    let missing = ex.run(
        HttpMethod::Post,
        json!({ "url": server.url("/"), "body": {"a": 1} }),
        vec![export("nope", ExportSource::JsonPointer("/missing".into()))],
    );
    assert!(matches!(missing, Err(ActionError::ExportFailed(e)) if e.field == "nope"));
}

#[test]
fn keep_alive_reuses_one_connection() {
    let server = echo_server();
    let mut ex = Executor::new();
    for i in 0..20 {
        let o = ex.get(&server.url("/k")).unwrap();
        assert_eq!(o.reused_connection, i > 0);
    }
    assert_eq!(server.stats.connections(), 1, "one connection");
    assert_eq!(
        *server.stats.per_connection.lock().unwrap(),
        vec![20],
        "20 requests on it"
    );
    // keep_alive false: a connection per request.
    let server = echo_server();
    for _ in 0..3 {
        ex.run(
            HttpMethod::Get,
            json!({ "url": server.url("/"), "keep_alive": false }),
            vec![],
        )
        .unwrap();
    }
    assert_eq!(server.stats.connections(), 3);
}

/// The reported timings follow the server's pauses: the head comes 100 ms after the request and
/// each of two body pieces 100 ms later still; a reused connection reports no connect time.
#[test]
fn timings_follow_the_exchange() {
    let pause = Duration::from_millis(100);
    let server = serve("127.0.0.1:0", None, move |_| {
        Reply::Trickle(
            vec![
                b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\n".to_vec(),
                b"abc".to_vec(),
                b"def".to_vec(),
            ],
            pause,
        )
    });
    let mut ex = Executor::new();
    for round in 0..2 {
        let start = Instant::now();
        let o = ex.get(&server.url("/t")).unwrap();
        let wall = start.elapsed().as_micros() as u64;
        assert_eq!((o.status, o.body.as_slice()), (200, &b"abcdef"[..]));
        let t = &o.timings;
        assert_eq!(t.dns_us, 0, "an IP literal needs no lookup");
        assert_eq!(o.reused_connection, round == 1);
        if round == 0 {
            assert!(t.connect_us > 0, "{t:?}");
        } else {
            assert_eq!(t.connect_us, 0, "{t:?}");
        }
        let p = pause.as_micros() as u64;
        assert!(t.first_byte_us >= p, "{t:?}");
        assert!(t.first_byte_us < t.total_us, "{t:?}");
        assert!(t.total_us >= 3 * p, "{t:?}");
        assert!(t.total_us <= wall, "{t:?} within {wall} us");
    }
}

#[test]
fn server_closing_idle_connections_is_survived() {
    // The server drops connections idle for 100 ms: the pooled one is found dead and replaced.
    let server = serve("127.0.0.1:0", Some(Duration::from_millis(100)), |_| {
        Reply::ok("x")
    });
    let mut ex = Executor::new();
    ex.get(&server.url("/")).unwrap();
    thread::sleep(Duration::from_millis(400));
    let o = ex.get(&server.url("/")).unwrap();
    assert_eq!(o.status, 200);
    assert!(!o.reused_connection);
    assert_eq!(server.stats.connections(), 2);
    // A POST is never sent twice, but one found closed while idle was never sent at all: it
    // goes on a fresh connection.
    thread::sleep(Duration::from_millis(400));
    let o = ex
        .run(
            HttpMethod::Post,
            json!({ "url": server.url("/p"), "body": "once" }),
            vec![],
        )
        .unwrap();
    assert_eq!(o.status, 200);
    assert!(!o.reused_connection);
    assert_eq!(server.stats.connections(), 3);
    assert_eq!(
        server.stats.requests(),
        3,
        "each request reached the server once"
    );

    // A server that closes right after answering, without saying so: the reused connection
    // fails before any response byte and the GET is retried once on a fresh one.
    let server = serve("127.0.0.1:0", None, |_| {
        Reply::RawClose(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok".to_vec())
    });
    for _ in 0..3 {
        let o = ex.get(&server.url("/")).unwrap();
        assert_eq!((o.status, o.body.as_slice()), (200, &b"ok"[..]));
    }
    assert_eq!(
        server.stats.requests(),
        3,
        "each GET reached the server once"
    );
}

#[test]
fn chunked_with_extensions_and_trailers() {
    let server = serve("127.0.0.1:0", None, |_| {
        Reply::Raw(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\r\n5;ext=1\r\nhello\r\n7;a;b=\"c\"\r\n, world\r\n0\r\nX-Sum: 12\r\n\r\n".to_vec())
    });
    let mut ex = Executor::new();
    for _ in 0..2 {
        let o = ex.get(&server.url("/c")).unwrap();
        assert_eq!(o.body, b"hello, world");
        assert_eq!(o.trailers.len(), 1);
        assert_eq!(
            (o.trailers[0].name.as_str(), o.trailers[0].value.as_str()),
            ("X-Sum", "12")
        );
    }
    assert_eq!(
        server.stats.connections(),
        1,
        "chunked responses keep the connection"
    );
}

#[test]
fn read_until_close_and_bodyless_statuses() {
    let server = serve("127.0.0.1:0", None, |r| match r.path.as_str() {
        "/close" => Reply::RawClose(b"HTTP/1.0 200 OK\r\n\r\nuntil the end".to_vec()),
        "/204" => Reply::Raw(b"HTTP/1.1 204 No Content\r\n\r\n".to_vec()),
        "/304" => Reply::Raw(b"HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n".to_vec()),
        "/100" => Reply::Raw(
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi".to_vec(),
        ),
        _ => Reply::ok(""),
    });
    let mut ex = Executor::new();
    assert_eq!(
        ex.get(&server.url("/close")).unwrap().body,
        b"until the end"
    );
    assert_eq!(ex.get(&server.url("/204")).unwrap().status, 204);
    let o = ex.get(&server.url("/304")).unwrap();
    assert_eq!((o.status, o.body.len()), (304, 0));
    let o = ex.get(&server.url("/100")).unwrap();
    assert_eq!((o.status, o.body.as_slice()), (200, &b"hi"[..]));
}

/// A server that sends interim (1xx) heads without end is stopped by the head limit (a
/// typed error, not a timeout).
#[test]
fn endless_interim_heads_are_refused() {
    use std::io::{Read, Write};
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/", l.local_addr().unwrap());
    let server = std::thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        let mut b = [0u8; 4096];
        let _ = s.read(&mut b);
        let heads = b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n".repeat(100);
        // Bounded: about 2 MB, far past the 64 KiB head limit, and stops when refused.
        for _ in 0..400 {
            if s.write_all(&heads).is_err() {
                break;
            }
        }
    });
    let e = Executor::new().get(&url).unwrap_err();
    assert!(
        matches!(&e, ActionError::TooLarge(m) if m.contains("interim (1xx) response heads")),
        "{e:?}"
    );
    server.join().unwrap();
}

#[test]
fn redirects_follow_the_rules() {
    let server = serve("127.0.0.1:0", None, |r| match r.path.as_str() {
        "/302" => Reply::status(302, &[("Location", "/land")]),
        "/303" => Reply::status(303, &[("Location", "/land")]),
        "/307" => Reply::status(307, &[("Location", "/land")]),
        "/308" => Reply::status(308, &[("Location", "land")]),
        "/loop-a" => Reply::status(301, &[("Location", "/loop-b")]),
        "/to-ftp" => Reply::status(302, &[("Location", "ftp://files.invalid/x")]),
        "/to-bad" => Reply::status(302, &[("Location", "http://[::1/x")]),
        "/loop-b" => Reply::status(301, &[("Location", "/loop-a")]),
        p if p.starts_with("/chain/") => {
            let n: u32 = p[7..].parse().unwrap();
            Reply::status(302, &[("Location", &format!("/chain/{}", n + 1))])
        }
        _ => Reply::ok(format!("{} {}", r.method, String::from_utf8_lossy(&r.body))),
    });
    let mut ex = Executor::new();
    for (path, want) in [
        ("/302", "GET "),
        ("/303", "GET "),
        ("/307", "POST payload"),
        ("/308", "POST payload"),
    ] {
        let o = ex
            .run(
                HttpMethod::Post,
                json!({ "url": server.url(path), "body": "payload" }),
                vec![],
            )
            .unwrap();
        assert_eq!(String::from_utf8(o.body).unwrap(), want, "{path}");
        assert_eq!(o.redirects, 1);
        assert!(o.final_url.ends_with("/land"));
    }
    assert!(matches!(
        ex.get(&server.url("/loop-a")),
        Err(ActionError::RedirectLoop(_))
    ));
    let r = ex.run(
        HttpMethod::Get,
        json!({ "url": server.url("/chain/0"), "redirects": 3 }),
        vec![],
    );
    assert!(matches!(r, Err(ActionError::TooManyRedirects(3))), "{r:?}");
    // A Location that cannot be followed is the server's: its own kind, naming it.
    for (path, location) in [
        ("/to-ftp", "ftp://files.invalid/x"),
        ("/to-bad", "http://[::1/x"),
    ] {
        match ex.get(&server.url(path)) {
            Err(ActionError::BadRedirect(m)) => assert!(m.contains(location), "{m}"),
            other => panic!("{path}: {other:?}"),
        }
    }
    // An IPv4-mapped IPv6 literal reaches the IPv4 address.
    let mapped = format!("http://[::ffff:127.0.0.1]:{}/land", server.addr.port());
    assert_eq!(ex.get(&mapped).unwrap().status, 200);
    let o = ex
        .run(
            HttpMethod::Get,
            json!({ "url": server.url("/302"), "redirects": false }),
            vec![],
        )
        .unwrap();
    assert_eq!(o.status, 302);
}

#[test]
fn each_timeout_phase() {
    let server = serve("127.0.0.1:0", None, |r| match r.path.as_str() {
        "/slow-first" => Reply::Trickle(
            vec![b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx".to_vec()],
            Duration::from_millis(1500),
        ),
        "/stall" => Reply::Trickle(
            vec![
                b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc".to_vec(),
                b"defghij".to_vec(),
            ],
            Duration::from_millis(0),
        )
        .then_stall(),
        _ => {
            let mut pieces = vec![b"HTTP/1.1 200 OK\r\nContent-Length: 20\r\n\r\n".to_vec()];
            pieces.extend((0..20).map(|_| b"x".to_vec()));
            Reply::Trickle(pieces, Duration::from_millis(100))
        }
    });
    let mut ex = Executor::new();
    let t = |first: u64, between: u64, total: u64| json!({ "first_byte_ms": first, "between_bytes_ms": between, "total_ms": total });
    let r = ex.run(
        HttpMethod::Get,
        json!({ "url": server.url("/slow-first"), "timeouts": t(200, 5000, 10000) }),
        vec![],
    );
    assert!(
        matches!(r, Err(ActionError::Timeout(TimeoutPhase::FirstByte))),
        "{r:?}"
    );
    let r = ex.run(
        HttpMethod::Get,
        json!({ "url": server.url("/stall"), "timeouts": t(5000, 300, 10000) }),
        vec![],
    );
    assert!(
        matches!(r, Err(ActionError::Timeout(TimeoutPhase::BetweenBytes))),
        "{r:?}"
    );
    let start = Instant::now();
    let r = ex.run(
        HttpMethod::Get,
        json!({ "url": server.url("/trickle"), "timeouts": t(5000, 5000, 500) }),
        vec![],
    );
    assert!(
        matches!(r, Err(ActionError::Timeout(TimeoutPhase::Total))),
        "{r:?}"
    );
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "the total bound held"
    );

    // Connect: a listener with a full backlog that never accepts.
    let listener =
        socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    listener
        .bind(&"127.0.0.1:0".parse::<SocketAddr>().unwrap().into())
        .unwrap();
    listener.listen(0).unwrap();
    let port = listener.local_addr().unwrap().as_socket().unwrap().port();
    let mut fillers = Vec::new();
    for _ in 0..8 {
        let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        s.set_nonblocking(true).unwrap();
        let _ = s.connect(&SocketAddr::from(([127, 0, 0, 1], port)).into());
        fillers.push(s);
    }
    thread::sleep(Duration::from_millis(100));
    let r = ex.run(
        HttpMethod::Get,
        json!({ "url": format!("http://127.0.0.1:{port}/"), "timeouts": { "connect_ms": 300, "total_ms": 5000 } }),
        vec![],
    );
    assert!(
        matches!(r, Err(ActionError::Timeout(TimeoutPhase::Connect))),
        "{r:?}"
    );
}

trait Stall {
    fn then_stall(self) -> Reply;
}

impl Stall for Reply {
    /// Send all but the last piece, then nothing more.
    fn then_stall(self) -> Reply {
        match self {
            Reply::Trickle(mut pieces, pause) => {
                pieces.pop();
                Reply::Trickle(pieces, pause)
            }
            other => other,
        }
    }
}

#[test]
fn retries_honour_retry_after_and_idempotency() {
    // Per path, every other request is refused.
    let hits = Arc::new(std::sync::Mutex::new(std::collections::HashMap::<
        String,
        usize,
    >::new()));
    let server = serve("127.0.0.1:0", None, move |r| {
        let n = {
            let mut h = hits.lock().unwrap();
            let c = h.entry(r.path.clone()).or_insert(0);
            *c += 1;
            *c - 1
        };
        match (r.path.as_str(), n % 2) {
            ("/busy", 0) => Reply::status(503, &[("Retry-After", "1")]),
            // An HTTP-date two seconds ahead: the wait is over one second whatever the
            // sub-second part of now is.
            ("/busy-date", 0) => {
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_secs();
                let date = http_core::date::format_http_date(now + 2);
                Reply::status(503, &[("Retry-After", &date)])
            }
            ("/busy-past", 0) => {
                Reply::status(503, &[("Retry-After", "Sun, 06 Nov 1994 08:49:37 GMT")])
            }
            (p, 0) if p.starts_with("/limit") => Reply::status(429, &[]),
            _ => Reply::ok("done"),
        }
    });
    let mut ex = Executor::new();
    // Retry-After in seconds, then as an HTTP-date.
    for (path, waited) in [
        ("/busy", "waited for Retry-After"),
        ("/busy-date", "waited until the Retry-After date"),
    ] {
        let start = Instant::now();
        let o = ex
            .run(
                HttpMethod::Get,
                json!({ "url": server.url(path), "retries": 2 }),
                vec![],
            )
            .unwrap();
        assert_eq!((o.status, o.attempts), (200, 2), "{path}");
        assert!(start.elapsed() >= Duration::from_millis(950), "{waited}");
    }
    // A date in the past: retry at once (no backoff either), well inside the request.
    let o = ex
        .run(
            HttpMethod::Get,
            json!({ "url": server.url("/busy-past"), "retries": 2 }),
            vec![],
        )
        .unwrap();
    assert_eq!((o.status, o.attempts), (200, 2));
    let o = ex
        .run(
            HttpMethod::Get,
            json!({ "url": server.url("/limit"), "retries": { "max": 3, "base_ms": 10 } }),
            vec![],
        )
        .unwrap();
    assert_eq!((o.status, o.attempts), (200, 2));
    // POST is not retried unless asked.
    let o = ex
        .run(
            HttpMethod::Post,
            json!({ "url": server.url("/limit"), "retries": 3 }),
            vec![],
        )
        .unwrap();
    assert_eq!((o.status, o.attempts), (429, 1));
    let o = ex
        .run(HttpMethod::Post, json!({ "url": server.url("/limit-post"), "retries": { "max": 3, "base_ms": 10, "non_idempotent": true } }), vec![])
        .unwrap();
    assert_eq!((o.status, o.attempts), (200, 2));
    // Connect errors are retried, then reported.
    let closed = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let start = Instant::now();
    let r = ex.run(HttpMethod::Get, json!({ "url": format!("http://127.0.0.1:{closed}/"), "retries": { "max": 2, "base_ms": 100 } }), vec![]);
    assert!(matches!(r, Err(ActionError::Connect(_))), "{r:?}");
    assert!(
        start.elapsed() >= Duration::from_millis(150),
        "backed off between attempts"
    );
}

#[test]
fn ten_megabytes_each_way_with_hashes() {
    const SIZE: usize = 10 * 1024 * 1024;
    let server = serve("127.0.0.1:0", None, |r| {
        let digest = hex(&Sha256::digest(&r.body));
        let body: Vec<u8> = (0..SIZE).map(|i| (i * 7 % 251) as u8).collect();
        Reply::Full(200, vec![("X-Request-Sha256".into(), digest)], body)
    });
    let upload: Vec<u8> = (0..SIZE).map(|i| (i * 13 % 241) as u8).collect();
    let mut ex = Executor::new();
    let o = ex
        .run(HttpMethod::Post, json!({ "url": server.url("/big"), "body": String::from_utf8_lossy(&upload).into_owned() }), vec![])
        .unwrap();
    let sent = String::from_utf8_lossy(&upload).into_owned().into_bytes();
    let header = o
        .headers
        .iter()
        .find(|h| h.name == "X-Request-Sha256")
        .unwrap();
    assert_eq!(
        header.value,
        hex(&Sha256::digest(&sent)),
        "server got the upload intact"
    );
    let want: Vec<u8> = (0..SIZE).map(|i| (i * 7 % 251) as u8).collect();
    assert_eq!(o.body.len(), SIZE);
    assert_eq!(
        Sha256::digest(&o.body),
        Sha256::digest(&want),
        "download intact"
    );
    assert!(o.bytes_received > SIZE as u64 && o.bytes_sent > sent.len() as u64);
}

fn hex(d: &[u8]) -> String {
    d.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn malformed_responses_give_typed_errors() {
    let server = serve("127.0.0.1:0", None, |r| match r.path.as_str() {
        "/status" => Reply::RawClose(b"HTTP/1.1 abc OK\r\n\r\n".to_vec()),
        "/garbage" => Reply::RawClose(b"SSH-2.0-OpenSSH\r\n\r\n".to_vec()),
        "/chunk" => Reply::RawClose(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n"
                .to_vec(),
        ),
        "/truncated" => {
            Reply::RawClose(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly this".to_vec())
        }
        "/truncated-chunked" => Reply::RawClose(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10\r\nabc".to_vec(),
        ),
        "/huge-head" => Reply::RawClose(
            format!("HTTP/1.1 200 OK\r\nX-Big: {}\r\n\r\n", "a".repeat(200_000)).into_bytes(),
        ),
        "/huge-body" => Reply::Full(200, vec![], vec![b'x'; 5000]),
        "/nothing" => Reply::Close,
        "/huge-length" => Reply::RawClose(
            b"HTTP/1.1 200 OK\r\nContent-Length: 1000000000000000\r\n\r\nabc".to_vec(),
        ),
        _ => Reply::ok(""),
    });
    let mut ex = Executor::new();
    let mut check = |path: &str, extra: serde_json::Value, ok: fn(&ActionError) -> bool| {
        let mut p = json!({ "url": server.url(path) });
        p.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        let r = ex.run(HttpMethod::Get, p, vec![]);
        assert!(matches!(&r, Err(e) if ok(e)), "{path}: {r:?}");
    };
    check("/status", json!({}), |e| {
        matches!(e, ActionError::Protocol(_))
    });
    check("/garbage", json!({}), |e| {
        matches!(e, ActionError::Protocol(_))
    });
    check("/chunk", json!({}), |e| {
        matches!(e, ActionError::Protocol(_))
    });
    check("/truncated", json!({}), |e| {
        matches!(e, ActionError::Protocol(_))
    });
    check("/truncated-chunked", json!({}), |e| {
        matches!(e, ActionError::Protocol(_))
    });
    check("/huge-head", json!({}), |e| {
        matches!(e, ActionError::TooLarge(_))
    });
    check("/huge-body", json!({ "max_response_body": 1000 }), |e| {
        matches!(e, ActionError::TooLarge(_))
    });
    check("/nothing", json!({}), |e| matches!(e, ActionError::Io(_)));
    // A declared length far past memory, with the limit lifted: an error, not a trap.
    check(
        "/huge-length",
        json!({ "max_response_body": 1_000_000_000_000_000_000u64 }),
        |e| matches!(e, ActionError::Protocol(_)),
    );
}

#[test]
fn ipv6_and_host_names() {
    let v6 = serve("[::1]:0", None, |r| Reply::ok(r.peer.ip().to_string()));
    let mut ex = Executor::new();
    let o = ex.get(&v6.url("/")).unwrap();
    assert_eq!(o.body, b"::1");
    assert!(o.source_address.unwrap().starts_with("[::1]:"));
    let v4 = echo_server();
    let o = ex
        .get(&format!("http://localhost:{}/name", v4.addr.port()))
        .unwrap();
    assert_eq!(o.status, 200);
    // A name that does not exist, from the test name service (no query leaves the process).
    let r = Executor::with_test_dns().get("http://no-such-host.invalid/");
    assert!(matches!(r, Err(ActionError::Dns(_))), "{r:?}");
}

/// Name resolution has its own timeout: a lookup nobody answers ends in `timeout(dns)`
/// after `dns_ms`, or in `timeout(total)` when the total deadline comes first.
#[test]
fn name_resolution_timeout() {
    let mut ex = Executor::with_test_dns();
    let url = "http://unanswered.test:8080/";
    for (dns_ms, total_ms, phase) in [
        (300, 10_000, TimeoutPhase::Dns),
        (5_000, 400, TimeoutPhase::Total),
    ] {
        let start = Instant::now();
        let r = ex.run(
            HttpMethod::Get,
            json!({ "url": url, "timeouts": { "dns_ms": dns_ms, "total_ms": total_ms } }),
            vec![],
        );
        let took = start.elapsed();
        assert!(
            matches!(&r, Err(ActionError::Timeout(p)) if *p == phase),
            "{r:?}"
        );
        let limit = Duration::from_millis(dns_ms.min(total_ms));
        assert!(
            took >= limit - Duration::from_millis(20),
            "gave up after {took:?}"
        );
        assert!(took < limit + Duration::from_secs(2), "took {took:?}");
    }
}

#[test]
fn source_address_explicit_or_from_the_pool() {
    let server = echo_server();
    let mut ex = Executor::new();
    let o = ex
        .run(
            HttpMethod::Get,
            json!({ "url": server.url("/"), "bind_ip": "127.0.20.5" }),
            vec![],
        )
        .unwrap();
    assert!(
        o.source_address
            .as_deref()
            .unwrap()
            .starts_with("127.0.20.5:")
    );
    assert_eq!(
        o.headers.iter().find(|h| h.name == "X-Peer").unwrap().value,
        "127.0.20.5"
    );

    // From a tenant's pool, in the same instance the scheduler configures.
    let f = ex.pool().clone();
    let cfg = pool::PoolConfig {
        strategy: pool::Strategy::Sequential,
        lease_ttl_ms: None,
        seed: 1,
    };
    f.call_create_pool(&mut ex.store, "tenant-a", cfg)
        .unwrap()
        .unwrap();
    f.call_add_cidr(&mut ex.store, "tenant-a", "127.0.21.0/29", true)
        .unwrap()
        .unwrap();
    let o = ex
        .run(HttpMethod::Get, json!({ "url": server.url("/"), "pool": "tenant-a", "tenant": "a", "resource": "user-1" }), vec![])
        .unwrap();
    let peer = o
        .headers
        .iter()
        .find(|h| h.name == "X-Peer")
        .unwrap()
        .value
        .clone();
    assert_eq!(peer, "127.0.21.1");
    assert!(o.source_address.unwrap().starts_with("127.0.21.1:"));
    let stats = f.call_stats(&mut ex.store, "tenant-a").unwrap().unwrap();
    assert_eq!(stats.allocated, 0, "released after the action");
    // The same action again (its parameters as parsed are reused): it leases again, from a
    // fresh allocation, and releases again.
    for _ in 0..2 {
        let o = ex
            .run(HttpMethod::Get, json!({ "url": server.url("/"), "pool": "tenant-a", "tenant": "a", "resource": "user-1" }), vec![])
            .unwrap();
        let peer = &o.headers.iter().find(|h| h.name == "X-Peer").unwrap().value;
        assert_eq!(peer, "127.0.21.1");
        let stats = f.call_stats(&mut ex.store, "tenant-a").unwrap().unwrap();
        assert_eq!(stats.allocated, 0);
    }
    // Releasing that address closed its own idle connection only: the one from 127.0.20.5
    // is still there for reuse.
    let again = ex
        .run(
            HttpMethod::Get,
            json!({ "url": server.url("/"), "bind_ip": "127.0.20.5" }),
            vec![],
        )
        .unwrap();
    assert!(
        again.reused_connection,
        "other sources keep their connections"
    );
    let o = ex
        .run(HttpMethod::Get, json!({ "url": server.url("/"), "pool": "tenant-a", "tenant": "a", "resource": "user-2", "release": "keep" }), vec![])
        .unwrap();
    assert_eq!(o.status, 200);
    assert_eq!(
        f.call_stats(&mut ex.store, "tenant-a")
            .unwrap()
            .unwrap()
            .allocated,
        1,
        "kept"
    );
    let r = ex.run(
        HttpMethod::Get,
        json!({ "url": server.url("/"), "pool": "nope", "tenant": "a" }),
        vec![],
    );
    assert!(
        matches!(r, Err(ActionError::Pool(pool::PoolError::UnknownPool(_)))),
        "{r:?}"
    );
}

#[test]
fn host_policy_and_bad_params() {
    let server = echo_server();
    let port = server.addr.port();
    let policy: Policy =
        Arc::new(move |a: SocketAddr, _| a.port() != port || a.ip().is_unspecified());
    let mut ex = Executor::with_policy(policy);
    assert!(matches!(
        ex.get(&server.url("/")),
        Err(ActionError::AccessDenied(_))
    ));

    let mut ex = Executor::new();
    let bad = |ex: &mut Executor, p: serde_json::Value, field: &str| {
        let r = ex.run(HttpMethod::Get, p, vec![]);
        assert!(
            matches!(&r, Err(ActionError::InvalidParams(e)) if e.field == field),
            "{field}: {r:?}"
        );
    };
    bad(&mut ex, json!({}), "url");
    bad(&mut ex, json!({ "url": "ftp://x/" }), "url");
    bad(
        &mut ex,
        json!({ "url": server.url("/"), "bind_ip": "300.1.1.1" }),
        "bind_ip",
    );
    bad(
        &mut ex,
        json!({ "url": server.url("/"), "unknown": 1 }),
        "unknown",
    );
    bad(
        &mut ex,
        json!({ "url": server.url("/"), "timeouts": { "connect_ms": "x" } }),
        "timeouts.connect_ms",
    );
    bad(
        &mut ex,
        json!({ "url": server.url("/"), "pool": "p" }),
        "tenant",
    );
    bad(
        &mut ex,
        json!({ "url": server.url("/"), "headers": { "bad name": "v" } }),
        "headers",
    );
    let r = ex.run(HttpMethod::Get, json!("not an object"), vec![]);
    assert!(matches!(r, Err(ActionError::InvalidParams(_))));
}

#[test]
fn extreme_numbers_are_bounded_not_traps() {
    let server = serve("127.0.0.1:0", None, |_| {
        Reply::status(503, &[("Retry-After", "18446744073709551615")])
    });
    let mut ex = Executor::new();
    let huge = u64::MAX;
    let o = ex
        .run(
            HttpMethod::Get,
            json!({ "url": server.url("/"), "retries": 1,
                    "timeouts": { "total_ms": huge, "dns_ms": huge, "connect_ms": huge, "first_byte_ms": huge, "between_bytes_ms": huge } }),
            vec![],
        )
        .unwrap();
    assert_eq!(
        (o.status, o.attempts),
        (503, 1),
        "a Retry-After past the deadline returns the answer"
    );
    // The instance is still usable afterwards.
    assert_eq!(ex.get(&server.url("/")).unwrap().status, 503);
}

/// A JSON body given as JSON is sent compact and typed application/json, unless the headers
/// name a type: then that one alone, whatever the order of the parameters.
#[test]
fn json_bodies_are_typed_once() {
    let server = serve("127.0.0.1:0", None, |r| {
        let types: Vec<String> = r
            .headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case("content-type"))
            .map(|(_, v)| v.clone())
            .collect();
        let mut body = types.join("|").into_bytes();
        body.push(b' ');
        body.extend_from_slice(&r.body);
        Reply::Full(200, vec![], body)
    });
    let mut ex = Executor::new();
    let text = |o: Outcome| String::from_utf8(o.body).unwrap();
    let o = ex
        .run(
            HttpMethod::Post,
            json!({ "url": server.url("/"), "body": {"a": [1, 2.5, "x\n"], "b": null} }),
            vec![],
        )
        .unwrap();
    assert_eq!(text(o), r#"application/json {"a":[1,2.5,"x\n"],"b":null}"#);
    // The harness writes keys sorted, so "body" comes before "headers" here.
    let o = ex
        .run(
            HttpMethod::Post,
            json!({ "url": server.url("/"), "body": {"a": 1}, "headers": {"Content-Type": "application/vnd.x+json"} }),
            vec![],
        )
        .unwrap();
    assert_eq!(text(o), r#"application/vnd.x+json {"a":1}"#);
}

/// Locations resolved as RFC 3986 section 5.2 has them, checked by what the server was asked
/// for; UTF-8 in a URL percent-encoded on the wire; an obs-fold read as one space.
#[test]
fn relative_redirects_and_urls_as_the_rfcs_have_them() {
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let s = seen.clone();
    let server = serve("127.0.0.1:0", None, move |r| {
        s.lock().unwrap().push(r.path.clone());
        match r.path.as_str() {
            "/dir/sub/a" => Reply::status(302, &[("Location", "../ok")]),
            "/dir/q?x=1" => Reply::status(302, &[("Location", "?page=2")]),
            "/dir/n" => Reply::status(302, &[("Location", "/ok?next=http://example.invalid/x")]),
            "/dir/e" => Reply::status(302, &[("Location", "")]),
            "/fold" => Reply::Raw(
                b"HTTP/1.1 200 OK\r\nX-Folded: one\r\n two\r\nContent-Length: 2\r\n\r\nok".to_vec(),
            ),
            _ => Reply::ok("landed"),
        }
    });
    let mut ex = Executor::new();
    for (start, lands) in [
        ("/dir/sub/a", "/dir/ok"),
        ("/dir/q?x=1", "/dir/q?page=2"),
        ("/dir/n", "/ok?next=http://example.invalid/x"),
    ] {
        seen.lock().unwrap().clear();
        let o = ex.get(&server.url(start)).unwrap();
        assert_eq!(o.status, 200, "{start}");
        assert_eq!(*seen.lock().unwrap(), [start, lands], "{start}");
        assert!(o.final_url.ends_with(lands), "{}", o.final_url);
    }
    // An empty Location is the same URL (RFC 3986 5.2.2): a loop, not a trip to /.
    let r = ex.get(&server.url("/dir/e"));
    assert!(matches!(r, Err(ActionError::RedirectLoop(_))), "{r:?}");

    seen.lock().unwrap().clear();
    let o = ex
        .get(&server.url("/caf\u{e9}/\u{65e5}?q=\u{2192}"))
        .unwrap();
    assert_eq!(o.status, 200);
    assert_eq!(*seen.lock().unwrap(), ["/caf%C3%A9/%E6%97%A5?q=%E2%86%92"]);

    let o = ex.get(&server.url("/fold")).unwrap();
    let folded = o
        .headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("x-folded"));
    assert_eq!(folded.map(|h| h.value.as_str()), Some("one two"));
    assert_eq!(o.body, b"ok");
}

/// A bare socket server for `Expect: 100-continue`: it answers `100 Continue` right after the
/// head (so the interim answer reaches the client while the body is still being written),
/// then reads the whole Content-Length body slowly, and answers with the count it got.
fn continue_server(interims: usize) -> (u16, thread::JoinHandle<Vec<u64>>) {
    use std::io::{Read, Write};
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let mut counts = Vec::new();
        let mut head = Vec::new();
        let mut b = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            if s.read(&mut b).unwrap_or(0) == 0 {
                return counts;
            }
            head.push(b[0]);
        }
        let text = String::from_utf8_lossy(&head).to_ascii_lowercase();
        let len: u64 = text
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .map(|v| v.trim().parse().unwrap())
            .unwrap();
        for _ in 0..interims {
            s.write_all(b"HTTP/1.1 100 Continue\r\n\r\n").unwrap();
        }
        // Slowly at first, so the client's send waits for room while the 100s are there.
        thread::sleep(Duration::from_millis(300));
        let mut got = 0u64;
        let mut buf = vec![0u8; 64 * 1024];
        while got < len {
            match s.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => got += n as u64,
            }
        }
        counts.push(got);
        let body = got.to_string();
        let _ = s.write_all(
            format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            )
            .as_bytes(),
        );
        thread::sleep(Duration::from_millis(200));
        counts
    });
    (port, server)
}

/// RFC 9110 section 10.1.1: an interim `100 Continue` that comes while the body is still being
/// written never ends the send; only a final response may. The peer gets every byte, and
/// `bytes-sent` is what it got (head and body).
#[test]
fn a_100_continue_mid_upload_never_ends_the_send() {
    for interims in [1, 3] {
        let (port, server) = continue_server(interims);
        let body = "y".repeat(10 << 20);
        let mut ex = Executor::new();
        let o = ex
            .run(
                HttpMethod::Post,
                json!({
                    "url": format!("http://127.0.0.1:{port}/upload"),
                    "body": body,
                    "headers": { "expect": "100-continue" },
                }),
                vec![],
            )
            .unwrap_or_else(|e| panic!("{interims} interim answers: {e:?}"));
        let counts = server.join().unwrap();
        assert_eq!(counts, vec![10u64 << 20], "what the server received");
        assert_eq!(o.status, 200);
        assert_eq!(o.body, (10u64 << 20).to_string().as_bytes());
        assert!(
            o.bytes_sent > 10 << 20 && o.bytes_sent < (10 << 20) + 512,
            "bytes-sent {} is the head and the whole body",
            o.bytes_sent
        );
    }
}

/// RFC 9112 section 9.5: a server that answers an upload early (413 after the head) and reads
/// no more of the body. The client stops sending, reports the answer, and never reuses the
/// connection it did not finish a request on.
#[test]
fn an_early_final_response_stops_the_upload() {
    use std::io::{Read, Write};
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let connections = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let c = connections.clone();
    thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let n = c.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            thread::spawn(move || {
                let mut s = stream;
                let mut head = Vec::new();
                let mut b = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") {
                    if s.read(&mut b).unwrap_or(0) == 0 {
                        return;
                    }
                    head.push(b[0]);
                }
                if head.starts_with(b"POST") {
                    // The first connection says it will close; the second does not, and keeps
                    // the connection open, reading nothing more.
                    let close = if n == 0 { "Connection: close\r\n" } else { "" };
                    let _ = s.write_all(
                        format!(
                            "HTTP/1.1 413 Payload Too Large\r\nContent-Length: 4\r\n{close}\r\nbig!"
                        )
                        .as_bytes(),
                    );
                    thread::sleep(Duration::from_secs(8));
                } else {
                    let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
                    thread::sleep(Duration::from_millis(500));
                }
            });
        }
    });
    let url = format!("http://127.0.0.1:{port}/upload");
    let body = "x".repeat(24 << 20);
    let mut ex = Executor::new();
    for round in 0..2 {
        let start = Instant::now();
        let o = ex
            .run(
                HttpMethod::Post,
                json!({ "url": url, "body": body, "timeouts": { "between_bytes_ms": 6000 } }),
                vec![],
            )
            .unwrap_or_else(|e| panic!("round {round}: {e:?}"));
        assert_eq!(
            (o.status, o.body.as_slice()),
            (413, &b"big!"[..]),
            "round {round}"
        );
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "round {round}: the upload went on for {:?}",
            start.elapsed()
        );
    }
    // The connection of the unfinished upload is not reused: a GET goes on a new one.
    let o = ex.get(&url).unwrap();
    assert_eq!(o.status, 200);
    assert!(!o.reused_connection);
    assert_eq!(connections.load(std::sync::atomic::Ordering::SeqCst), 3);
}

/// A discarded body is dropped in the socket component, a read at a time, never past its
/// end: a sized one leaves its kept-alive connection exactly at the next answer, one read to
/// the close is counted whole, a short one is a truncated body, and the limit holds.
#[test]
fn a_discarded_body_is_dropped_where_it_is_read_and_framing_holds() {
    const SIZE: usize = 300_000;
    let server = serve("127.0.0.1:0", None, |r| match r.path.as_str() {
        "/sized" => Reply::ok(vec![b's'; SIZE]),
        "/chunked" => {
            let mut raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
            for _ in 0..3 {
                raw.extend_from_slice(b"186a0;ext=1\r\n");
                raw.extend(std::iter::repeat_n(b'c', SIZE / 3));
                raw.extend_from_slice(b"\r\n");
            }
            raw.extend_from_slice(b"0\r\nX-Trailer: t\r\n\r\n");
            Reply::Raw(raw)
        }
        "/to-close" => {
            let mut raw = b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n".to_vec();
            raw.extend(std::iter::repeat_n(b'c', SIZE));
            Reply::RawClose(raw)
        }
        "/short" => {
            let mut raw = format!("HTTP/1.1 200 OK\r\nContent-Length: {SIZE}\r\n\r\n").into_bytes();
            raw.extend(std::iter::repeat_n(b'x', SIZE / 2));
            Reply::RawClose(raw)
        }
        _ => Reply::ok("next"),
    });
    let mut ex = Executor::new();
    let discard = |path: &str, max: usize| json!({ "url": server.url(path), "discard_body": true, "max_response_body": max });
    for path in ["/sized", "/chunked"] {
        let o = ex
            .run(HttpMethod::Get, discard(path, SIZE), vec![])
            .unwrap();
        assert_eq!(
            (o.status, o.body_length, o.body.len()),
            (200, SIZE as u64, 0)
        );
        assert!(o.bytes_received > SIZE as u64, "{}", o.bytes_received);
        // The connection is reused and its next answer read whole: nothing was left.
        let o = ex.get(&server.url("/next")).unwrap();
        assert_eq!(
            (o.body.as_slice(), o.reused_connection),
            (&b"next"[..], true),
            "{path}"
        );
    }
    let o = ex
        .run(HttpMethod::Get, discard("/to-close", SIZE), vec![])
        .unwrap();
    assert_eq!((o.body_length, o.body.len()), (SIZE as u64, 0));
    let e = ex
        .run(HttpMethod::Get, discard("/to-close", SIZE - 1), vec![])
        .unwrap_err();
    assert!(matches!(e, ActionError::TooLarge(_)), "{e:?}");
    let e = ex
        .run(HttpMethod::Get, discard("/short", SIZE), vec![])
        .unwrap_err();
    assert!(format!("{e:?}").contains("truncated body"), "{e:?}");
}

/// A chunked answer of `size` bytes of `c` in chunks of `chunk` bytes (`size` a multiple).
fn chunked(size: usize, chunk: usize) -> Vec<u8> {
    let mut raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    for _ in 0..size / chunk {
        raw.extend_from_slice(format!("{chunk:x}\r\n").as_bytes());
        raw.extend(std::iter::repeat_n(b'c', chunk));
        raw.extend_from_slice(b"\r\n");
    }
    raw.extend_from_slice(b"0\r\n\r\n");
    raw
}

/// `discard_body` counts the body and keeps none of it (k6's `discardResponseBodies`): a
/// 24 MiB body, sized and chunked, leaves every memory of the instance as it was; kept, the
/// same body grows one past its size (so the watch sees what it claims to).
#[test]
fn a_discarded_body_is_counted_not_kept() {
    const SIZE: usize = 24 << 20;
    let server = serve("127.0.0.1:0", None, |r| match r.path.as_str() {
        "/chunked" => Reply::Raw(chunked(SIZE, 1 << 20)),
        "/sized" => Reply::ok(vec![b's'; SIZE]),
        _ => Reply::ok("small"),
    });
    let mut ex = Executor::new();
    // A first request sizes what the instance needs for one exchange.
    ex.get(&server.url("/small")).ok();
    ex.watch_memory();
    for path in ["/sized", "/chunked"] {
        let params =
            json!({ "url": server.url(path), "discard_body": true, "max_response_body": SIZE * 2 });
        let o = ex.run(HttpMethod::Get, params, vec![]).unwrap();
        assert_eq!(
            (o.status, o.body_length, o.body.len()),
            (200, SIZE as u64, 0),
            "{path}"
        );
        assert!(
            o.bytes_received > SIZE as u64,
            "{path}: {}",
            o.bytes_received
        );
    }
    let high = ex.store.data().memory_high.0;
    assert!(
        high < SIZE / 2,
        "a discarded body grew a memory to {high} bytes"
    );
    // The limit still holds for a discarded body.
    let params = json!({ "url": server.url("/chunked"), "discard_body": true, "max_response_body": SIZE - 1 });
    let e = ex.run(HttpMethod::Get, params, vec![]).unwrap_err();
    assert!(matches!(e, ActionError::TooLarge(_)), "{e:?}");
    let params = json!({ "url": server.url("/sized"), "max_response_body": SIZE * 2 });
    let o = ex.run(HttpMethod::Get, params, vec![]).unwrap();
    assert_eq!(o.body.len(), SIZE);
    assert!(
        ex.store.data().memory_high.0 > SIZE,
        "a kept body was not watched"
    );
}

/// A kept body fetched again and again reuses the memory the last one freed: 24 of 4 MiB
/// (sized, then chunked) leave the instance's memories under three bodies' worth. (The guest
/// allocator once grew the block at the heap's top in place each time and never went back to
/// the freed one: a run keeping a 30 MB body trapped out of memory on its 17th iteration.)
#[test]
fn a_kept_body_fetched_again_and_again_reuses_its_memory() {
    const SIZE: usize = 4 << 20;
    let server = serve("127.0.0.1:0", None, |r| match r.path.as_str() {
        "/chunked" => Reply::Raw(chunked(SIZE, 1 << 16)),
        _ => Reply::ok(vec![b's'; SIZE]),
    });
    let mut ex = Executor::new();
    ex.watch_memory();
    for i in 0..24 {
        let path = if i % 2 == 0 { "/sized" } else { "/chunked" };
        let o = ex.get(&server.url(path)).unwrap();
        assert_eq!((o.status, o.body.len()), (200, SIZE), "{path} #{i}");
    }
    let high = ex.store.data().memory_high.0;
    assert!(
        high < 3 * SIZE,
        "24 kept bodies of {SIZE} bytes grew a memory to {high} bytes"
    );
}

/// A kept body the instance's memory has no room for is a `TooLarge` error, not a trap: with
/// each memory held to 24 MiB, a 32 MiB body (sized, chunked, and to the connection's close)
/// fails with the reason, and the same instance goes on to the next request.
#[test]
fn a_kept_body_past_the_memory_is_an_error_and_the_instance_goes_on() {
    const SIZE: usize = 32 << 20;
    let server = serve("127.0.0.1:0", None, |r| match r.path.as_str() {
        "/chunked" => Reply::Raw(chunked(SIZE, 1 << 20)),
        "/to-close" => {
            let mut raw = b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n".to_vec();
            raw.extend(std::iter::repeat_n(b'u', SIZE));
            Reply::RawClose(raw)
        }
        "/sized" => Reply::ok(vec![b's'; SIZE]),
        _ => Reply::ok("small"),
    });
    let mut ex = Executor::new();
    ex.watch_memory();
    ex.store.data_mut().memory_high.1 = Some(24 << 20);
    for path in ["/sized", "/chunked", "/to-close"] {
        let params = json!({ "url": server.url(path), "max_response_body": SIZE * 2 });
        let e = ex.run(HttpMethod::Get, params, vec![]).unwrap_err();
        match e {
            ActionError::TooLarge(why) => assert!(why.contains("does not fit"), "{path}: {why}"),
            other => panic!("{path}: {other:?}"),
        }
        let o = ex.get(&server.url("/small")).unwrap();
        assert_eq!((o.status, o.body), (200, b"small".to_vec()), "after {path}");
    }
}

/// Bytes cross between the components whole and in order, whatever their count: bodies of
/// every byte value, of 0 to 1 MiB + 3 bytes (around the 64 KiB reads and writes), sent and
/// echoed back. Each crossing of a `list<u8>` (http-actions to the socket component and
/// back) is the host's copy in the patched adapters (vendor/README.md).
#[test]
fn bytes_cross_between_components_whole_at_every_size() {
    use base64::Engine as _;
    let server = echo_server();
    let mut ex = Executor::new();
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    for size in [0, 1, 2, 7, 255, 4096, 65_535, 65_536, 65_537, (1 << 20) + 3] {
        let sent: Vec<u8> = (0..size)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                seed as u8
            })
            .collect();
        let params = json!({
            "url": server.url("/x"),
            "body_base64": base64::engine::general_purpose::STANDARD.encode(&sent),
        });
        let o = ex.run(HttpMethod::Post, params, vec![]).unwrap();
        let (head, echoed) = o.body.split_at(b"POST /x ".len());
        assert_eq!((o.status, head), (200, &b"POST /x "[..]), "{size}");
        assert!(echoed == sent, "{size} bytes came back changed");
    }
}
