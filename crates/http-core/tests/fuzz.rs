//! Fuzzing on the stable toolchain: proptest drives each decoder with arbitrary bytes and with
//! mutations of valid inputs. Every input must give a value or a typed error: no panic, no
//! unbounded output. `cargo test` runs a small fixed count (PROPTEST_CASES, 256 by default);
//! `just fuzz` runs many more. A finding is kept as a regression case in
//! `tests/fuzz.proptest-regressions` (proptest writes it) and as a named test below.

use http_core::codec::{ChunkedDecoder, Framing, framing, parse_head};
use http_core::url::Url;
use http_core::{Method, json};
use proptest::prelude::*;

/// Valid-looking inputs with bytes flipped, cut, or spliced in: reaches deeper than random
/// bytes alone.
fn mutated(seeds: &'static [&'static [u8]]) -> impl Strategy<Value = Vec<u8>> {
    (
        proptest::sample::select(seeds),
        proptest::collection::vec((any::<usize>(), any::<u8>(), 0u8..4), 0..8),
    )
        .prop_map(|(seed, edits)| {
            let mut v = seed.to_vec();
            for (at, byte, op) in edits {
                let at = if v.is_empty() { 0 } else { at % (v.len() + 1) };
                match op {
                    0 if at < v.len() => v[at] = byte,
                    1 => v.insert(at, byte),
                    2 if at < v.len() => {
                        v.remove(at);
                    }
                    _ => v.truncate(at),
                }
            }
            v
        })
}

const HEADS: &[&[u8]] = &[
    b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
    b"HTTP/1.0 302 Found\r\nLocation: /x?y=http://z\r\nSet-Cookie: a=b\r\n\r\n",
    b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n",
];

const CHUNKED: &[&[u8]] = &[
    b"5\r\nhello\r\n0\r\n\r\n",
    b"1;ext=1\r\na\r\n10\r\n0123456789abcdef\r\n0\r\nTrailer: x\r\n\r\n",
    b"FFFFFFFFFFFFFFFF\r\n",
];

const JSON: &[&[u8]] = &[
    br#"{"a":[1,2.5e3,-0,true,false,null],"b":{"c":"\u00e9\ud83d\ude00\n"}}"#,
    br#"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]"#,
    b"\"\\uD800\"",
];

/// "hello hello hello" as gzip (fixed Huffman), zlib, a stored block, and a dynamic-Huffman
/// gzip of a longer text.
const CODED: &[&[u8]] = &[
    b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\x03\xcbH\xcd\xc9\xc9W\xc8@\x90\x00\x80\x88\xf9\xe5\x11\x00\x00\x00",
    b"x\x9c\xcbH\xcd\xc9\xc9W\xc8@\x90\x00:.\x06}",
    b"\x01\x05\x00\xfa\xffhello",
    b"\x1f\x8b\x08\x08\x00\x00\x00\x00\x02\xfff\x00E\x90A\x0e\xc3 \x0c\x04\xbf\xc2\x07\"\xb1\xc6\x18\xfc\x1c\xaaF\xed!\x91z\xe8\xff\xd5\xa8a\xcd\x111Z\xef\xec8>\xef\xb1\xe5\xf4\xd8\xbfcCz\x8d\xf3\x1c\x9b\xa6\xe7~\\oO\xe3\xff\x0d\xbb\xff\xa5N\xa0\xd8$\x94\x88\xe9\x8dtf \xe7\xc9@\xc0\x1c\x9d\x14\xcc\x899\xa3\xe4J\xbf1\xa9\xbc\xd7\x89\x15a\xa7bL\xd3<k\xabF\xf1N\xac\x0a\x9b\xd56\xd3,\xea[\xe3\xd1\x16X\xeb4\x884\x0f\x05\x8f\xa3\xc8B\x87\x1c\xed\x80j!\x1b\x1a\x10\x9f\x97Q\x96\xaf*+\xa2\xaea\x8c.\xb0\xb5`\xb3@{\x0c\x0d/\\'\x87\x90\x00k\xc6\xec?\xe1\x0e\x97\xdf\xd5\x01\x00\x00",
];

const URLS: &[&[u8]] = &[
    b"http://127.0.0.1:8080/a/b?c=d#e",
    b"http://[::1]:80/",
    b"HTTP://user@host.example:65535/%41?x",
];

fn check_head(bytes: &[u8]) {
    if let Ok(Some(head)) = parse_head(bytes, 64 * 1024) {
        assert!(head.len <= bytes.len());
        // Every field reads back (names are tokens, folds are unfolded) and is found by name.
        for (name, value) in head.headers.iter() {
            assert!(name.bytes().all(|b| b.is_ascii_graphic()), "{name:?}");
            assert!(
                !name.is_empty() && !value.contains('\n'),
                "{name:?}: {value:?}"
            );
            assert!(head.headers.get(name).is_some(), "{name:?}");
        }
        for m in [Method::Get, Method::Head, Method::Post] {
            if let Ok(f) = framing(m, &head)
                && let Framing::Length(n) = f
            {
                let _ = n;
            }
        }
    }
}

fn check_chunked(bytes: &[u8], split: usize) {
    let max = 1 << 16;
    let mut d = ChunkedDecoder::new();
    let mut out = Vec::new();
    let (a, b) = bytes.split_at(split.min(bytes.len()));
    for part in [a, b] {
        match d.feed(part, &mut out, max) {
            Ok(used) => assert!(used <= part.len()),
            Err(_) => return,
        }
        assert!(out.len() as u64 <= max, "body within its bound");
        if d.done() {
            return;
        }
    }
}

fn check_url(text: &str, location: &str) {
    if let Ok(u) = Url::parse(text) {
        let again = Url::parse(&u.to_text());
        assert!(again.is_ok(), "{text:?} -> {:?} reparses", u.to_text());
        let _ = u.join(location);
    }
}

fn check_json(bytes: &[u8]) {
    if let Ok(text) = std::str::from_utf8(bytes)
        && let Ok(v) = json::parse(text)
    {
        let _ = v.pointer("/a/0");
        let _ = v.pointer("/b/c");
    }
}

fn check_coded(bytes: &[u8]) {
    for coding in ["gzip", "deflate", "gzip, deflate"] {
        match http_core::encoding::decode(coding, bytes.to_vec(), 4096) {
            Ok(out) => assert!(out.len() <= 4096, "decoded within its bound"),
            Err(http_core::HttpError::Protocol(_) | http_core::HttpError::TooLarge(_)) => {}
            Err(e) => panic!("{coding}: {e:?}"),
        }
    }
}

proptest! {
    #[test]
    fn content_codings(bytes in prop_oneof![mutated(CODED), proptest::collection::vec(any::<u8>(), 0..512)]) {
        check_coded(&bytes);
    }

    #[test]
    fn response_heads(bytes in prop_oneof![mutated(HEADS), proptest::collection::vec(any::<u8>(), 0..512)]) {
        check_head(&bytes);
    }

    #[test]
    fn chunked_bodies(bytes in prop_oneof![mutated(CHUNKED), proptest::collection::vec(any::<u8>(), 0..512)], split in any::<usize>()) {
        check_chunked(&bytes, split);
    }

    #[test]
    fn urls_and_joins(base in prop_oneof![mutated(URLS).prop_map(|v| String::from_utf8_lossy(&v).into_owned()), ".{0,64}"], location in ".{0,64}") {
        check_url(&base, &location);
    }

    #[test]
    fn json_documents(bytes in prop_oneof![mutated(JSON), proptest::collection::vec(any::<u8>(), 0..256)]) {
        check_json(&bytes);
    }
}

/// Deep nesting must be a typed error, not a stack overflow.
#[test]
fn content_coding_seeds_decode() {
    let hello = b"hello hello hello";
    assert_eq!(
        http_core::encoding::decode("gzip", CODED[0].to_vec(), 100).unwrap(),
        hello
    );
    assert_eq!(
        http_core::encoding::decode("deflate", CODED[1].to_vec(), 100).unwrap(),
        hello
    );
    assert_eq!(
        http_core::encoding::decode("deflate", CODED[2].to_vec(), 100).unwrap(),
        b"hello"
    );
    let long = http_core::encoding::decode("gzip", CODED[3].to_vec(), 1000).unwrap();
    assert!(long.starts_with(b"alpha-0 beta-1 gamma-4"));
}

#[test]
fn deeply_nested_json_is_refused_or_read() {
    for depth in [1_000, 100_000] {
        let text = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
        let _ = json::parse(&text);
    }
}
