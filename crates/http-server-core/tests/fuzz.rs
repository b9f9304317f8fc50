//! Arbitrary bytes, split anywhere, never panic the server: each answer is a whole HTTP/1.1
//! answer, and a connection that refused something takes nothing more.

use http_server_core::Config;
use http_server_core::conn::{Conn, Output, Server};
use proptest::prelude::*;

fn server() -> Server {
    let config = Config::parse(
        r#"{"id":"f","address":"127.0.0.1","port":1,"limits":{"max_head":2048,"max_body":4096},
            "routes":[{"path":"/e","echo":true},{"method":"GET","path":"/u/{id}","body":"{{path.id}} {{query.q}} {{header.x}}"}],
            "middleware":[{"access_log":true},{"headers":{"X":"{{request.path}}"}}]}"#,
    )
    .unwrap();
    Server::new(config, "127.0.0.1:1".into(), 3)
}

fn heads() -> impl Strategy<Value = Vec<u8>> {
    let pieces = prop_oneof![
        Just(b"GET /u/1 HTTP/1.1\r\nHost: h\r\n\r\n".to_vec()),
        Just(b"POST /e HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc".to_vec()),
        Just(b"POST /e HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n".to_vec()),
        Just(b"Content-Length: 99999999999999999999\r\n".to_vec()),
        Just(b"Transfer-Encoding: chunked\r\n".to_vec()),
        Just(b"\r\n".to_vec()),
        proptest::collection::vec(any::<u8>(), 0..64),
    ];
    proptest::collection::vec(pieces, 0..12).prop_map(|v| v.concat())
}

proptest! {
    #[test]
    fn any_bytes_any_split(bytes in heads(), cuts in proptest::collection::vec(0usize..200, 0..6)) {
        let mut s = server();
        let mut c = Conn::default();
        let mut at = 0;
        let mut points: Vec<usize> = cuts.into_iter().filter(|&x| x < bytes.len()).collect();
        points.sort();
        points.push(bytes.len());
        for p in points {
            for o in c.feed(&bytes[at..p], &mut s, 1000, "D", "p") {
                if let Output::Send { bytes, .. } = o {
                    prop_assert!(bytes.starts_with(b"HTTP/1.1 "));
                    prop_assert!(bytes.windows(4).any(|w| w == b"\r\n\r\n"));
                }
            }
            at = p;
        }
        if c.closing {
            prop_assert!(c.feed(b"GET /u/2 HTTP/1.1\r\nHost: h\r\n\r\n", &mut s, 0, "D", "p").is_empty());
        }
    }
}
