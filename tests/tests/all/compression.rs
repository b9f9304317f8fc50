//! `decompress` (curl's `--compressed`): gzip from a real nginx (chunked, as nginx streams it),
//! deflate (zlib-wrapped and raw) and bombs from an in-process server. Off by default: the
//! body stays byte-exact and no Accept-Encoding is sent.
//!
//! `.ci/run` installs nginx; where it is missing the nginx half says so and passes, unless
//! REQUIRE_NGINX=1 (as in CI).

use std::io::Write;
use std::time::{Duration, Instant};

use integration_tests::http_server::{Reply, serve};
use integration_tests::*;
use serde_json::json;

fn text(n: usize) -> Vec<u8> {
    (0..n)
        .map(|i| b"the quick brown fox jumps over the lazy dog\n"[i % 44] ^ ((i / 4099) % 7) as u8)
        .collect()
}

fn too_large(e: ActionError) -> String {
    match e {
        ActionError::TooLarge(m) => m,
        other => panic!("expected too-large, got {other:?}"),
    }
}

#[test]
fn nginx_gzip_is_decoded_only_when_asked() {
    let Some(bin) = integration_tests::nginx::binary_or_skip() else {
        return;
    };
    let nginx = integration_tests::nginx::Nginx::start_server(
        &bin,
        "gzip",
        "log_format enc '$http_accept_encoding|$sent_http_content_encoding|$body_bytes_sent';\n    \
         access_log {dir}/logs/access.log enc;\n    \
         gzip on; gzip_types *; gzip_min_length 1; gzip_http_version 1.0; gzip_comp_level 6;",
        "server { listen 127.0.0.1:{port}; location / { root {dir}/www; } }",
    )
    .unwrap();
    std::fs::create_dir_all(nginx.dir.join("www")).unwrap();
    let page = text(300_000);
    std::fs::write(nginx.dir.join("www/page.txt"), &page).unwrap();
    let url = format!("http://127.0.0.1:{}/page.txt", nginx.port);

    let mut ex = Executor::new();
    // Asked: gzip on the wire, the page decoded.
    let o = ex
        .run(
            HttpMethod::Get,
            json!({ "url": url, "decompress": true }),
            vec![],
        )
        .unwrap();
    assert_eq!(o.status, 200);
    assert!(o.body == page, "decoded body is the file");
    assert_eq!(o.body_length, page.len() as u64);
    assert!(
        o.bytes_received < page.len() as u64 / 5,
        "{}",
        o.bytes_received
    );
    let enc = |o: &Outcome| {
        o.headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case("content-encoding"))
            .map(|h| h.value.clone())
    };
    assert_eq!(
        enc(&o).as_deref(),
        Some("gzip"),
        "the header is kept, as curl"
    );
    // Not asked: nothing advertised, the body byte-exact as served.
    let o = ex
        .run(HttpMethod::Get, json!({ "url": url }), vec![])
        .unwrap();
    assert!(o.body == page);
    assert_eq!(enc(&o), None);
    // The caller's own Accept-Encoding wins.
    let o = ex
        .run(
            HttpMethod::Get,
            json!({ "url": url, "decompress": true, "headers": { "Accept-Encoding": "identity" } }),
            vec![],
        )
        .unwrap();
    assert!(o.body == page);
    // The limit holds for the decoded body.
    let e = ex
        .run(
            HttpMethod::Get,
            json!({ "url": url, "decompress": true, "max_response_body": 100_000 }),
            vec![],
        )
        .unwrap_err();
    assert!(too_large(e).contains("decoded"));
    drop(ex);

    let log_path = nginx.dir.join("logs/access.log");
    let start = Instant::now();
    let log = loop {
        let log = std::fs::read_to_string(&log_path).unwrap_or_default();
        if log.lines().count() >= 4 || start.elapsed() > Duration::from_secs(5) {
            break log;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let lines: Vec<Vec<&str>> = log.lines().map(|l| l.split('|').collect()).collect();
    assert_eq!(lines.len(), 4, "{log}");
    assert_eq!(lines[0][..2], ["gzip, deflate", "gzip"], "{log}");
    assert_eq!(lines[1][..2], ["-", "-"], "{log}");
    assert_eq!(lines[2][..2], ["identity", "-"], "{log}");
    assert_eq!(lines[3][..2], ["gzip, deflate", "gzip"], "{log}");
}

#[test]
fn deflate_raw_deflate_bombs_and_unknown_codings() {
    let page = text(100_000);
    let (zlib, raw, bomb, twice) = {
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
        z.write_all(&page).unwrap();
        // Gzipped, then deflated: the codings in that order, each in a field of its own.
        let mut inner = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        inner.write_all(&page).unwrap();
        let mut stacked = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
        stacked.write_all(&inner.finish().unwrap()).unwrap();
        let mut d = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::fast());
        d.write_all(&page).unwrap();
        let mut g = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        g.write_all(&vec![0u8; 64 << 20]).unwrap();
        (
            z.finish().unwrap(),
            d.finish().unwrap(),
            g.finish().unwrap(),
            stacked.finish().unwrap(),
        )
    };
    assert!(
        bomb.len() < 100_000,
        "64 MiB of zeros in {} bytes",
        bomb.len()
    );
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let s = seen.clone();
    let server = serve("127.0.0.1:0", None, move |r| {
        s.lock()
            .unwrap()
            .push(r.header("accept-encoding").map(str::to_string));
        if r.path == "/twice" {
            let fields = ["gzip", "deflate"].map(|c| ("Content-Encoding".into(), c.into()));
            return Reply::Full(200, fields.to_vec(), twice.clone());
        }
        let (coding, body) = match r.path.as_str() {
            "/zlib" => ("deflate", zlib.clone()),
            "/raw" => ("deflate", raw.clone()),
            "/bomb" => ("gzip", bomb.clone()),
            "/br" => ("br", b"\x0b\x02\x80hello\x03".to_vec()),
            _ => ("gzip", b"\x1f\x8b\x08\0\0\0\0\0\0\x03garbage".to_vec()),
        };
        Reply::Full(200, vec![("Content-Encoding".into(), coding.into())], body)
    });
    let mut ex = Executor::new();
    let get = |ex: &mut Executor, path: &str, extra: serde_json::Value| {
        let mut p = json!({ "url": server.url(path), "decompress": true });
        for (k, v) in extra.as_object().unwrap() {
            p[k] = v.clone();
        }
        ex.run(HttpMethod::Get, p, vec![])
    };
    for path in ["/zlib", "/raw", "/twice"] {
        let o = get(&mut ex, path, json!({})).unwrap();
        assert!(o.body == page, "{path}");
    }
    // A bomb stops at the limit (64 MiB by default; 1 MiB here), whatever its wire size.
    let e = get(&mut ex, "/bomb", json!({ "max_response_body": 1 << 20 })).unwrap_err();
    assert!(too_large(e).contains("1048576"));
    // Given room, the same body decodes.
    let o = get(&mut ex, "/bomb", json!({ "max_response_body": 64 << 20 })).unwrap();
    assert_eq!(o.body_length, 64 << 20);
    for (path, want) in [
        ("/br", "\"br\" body: not a coding"),
        ("/bad", "\"gzip\" body: "),
    ] {
        match get(&mut ex, path, json!({})).unwrap_err() {
            ActionError::Protocol(m) => assert!(m.contains(want), "{path}: {m}"),
            other => panic!("{path}: {other:?}"),
        }
    }
    // Without decompress the same bytes come back as sent.
    let o = ex
        .run(HttpMethod::Get, json!({ "url": server.url("/br") }), vec![])
        .unwrap();
    assert_eq!(o.body, b"\x0b\x02\x80hello\x03");
    let seen = seen.lock().unwrap();
    assert_eq!(seen[0].as_deref(), Some("gzip, deflate"));
    assert_eq!(seen.last().unwrap(), &None);
}
