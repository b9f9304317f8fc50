//! The opening handshake (RFC 6455 section 4): the client's upgrade request and the checks on
//! the server's answer.

#[allow(unused_imports)]
use crate::prelude::*;

use super::WsError;
use crate::codec::{Head, Headers, lists, trim_ows};

/// Appended to the key before hashing (section 1.3).
const GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// Headers the handshake sets; a caller's own would contradict it.
const OURS: [&str; 6] = [
    "upgrade",
    "connection",
    "sec-websocket-key",
    "sec-websocket-version",
    "sec-websocket-protocol",
    "sec-websocket-extensions",
];

/// Standard base64 with padding (RFC 4648 section 4).
pub fn base64(bytes: &[u8]) -> String {
    const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..4 {
            match i <= chunk.len() {
                true => out.push(ABC[(n >> (18 - 6 * i) & 63) as usize] as char),
                false => out.push('='),
            }
        }
    }
    out
}

/// SHA-1 of the key and the GUID: what `Sec-WebSocket-Accept` carries, in base64.
pub fn accept_digest(key: &str) -> [u8; 20] {
    let mut h = sha1_smol::Sha1::new();
    h.update(key.as_bytes());
    h.update(GUID.as_bytes());
    h.digest().bytes()
}

/// The caller's headers and the handshake's: Upgrade, Connection, the key, version 13, and
/// the subprotocols offered in order of preference.
pub fn request_headers(
    user: &Headers,
    key: &str,
    protocols: &[String],
) -> Result<Headers, WsError> {
    if let Some((name, _)) = user
        .iter()
        .find(|(k, _)| OURS.iter().any(|o| k.eq_ignore_ascii_case(o)))
    {
        return Err(WsError::Params(
            "headers".into(),
            format!("{name} is the handshake's to set"),
        ));
    }
    let mut h = user.clone();
    h.push(("Upgrade".into(), "websocket".into()));
    h.push(("Connection".into(), "Upgrade".into()));
    h.push(("Sec-WebSocket-Key".into(), key.into()));
    h.push(("Sec-WebSocket-Version".into(), "13".into()));
    if !protocols.is_empty() {
        h.push(("Sec-WebSocket-Protocol".into(), protocols.join(", ")));
    }
    Ok(h)
}

/// Section 4.1's checks on the answer: 101, `Upgrade: websocket`, `Connection: Upgrade`, the
/// accept value for `key`, no extension (none was offered), and a subprotocol only from those
/// offered. The subprotocol agreed on, if any.
pub fn check(head: &Head, key: &str, offered: &[String]) -> Result<Option<String>, WsError> {
    let fail = |message: String| WsError::Handshake(head.status, message);
    if head.status != 101 {
        return Err(fail(format!(
            "the server answered {} {}, not 101",
            head.status, head.reason
        )));
    }
    let h = |name| head.headers.get(name);
    if !lists(head.headers.all("upgrade"), "websocket") {
        return Err(fail("no Upgrade: websocket in the answer".into()));
    }
    if !lists(head.headers.all("connection"), "upgrade") {
        return Err(fail("no Connection: Upgrade in the answer".into()));
    }
    let accept = h("sec-websocket-accept").map(trim_ows);
    let decoded = accept.and_then(crate::codec::decode_base64);
    if decoded.as_deref() != Some(&accept_digest(key)[..]) {
        return Err(fail(format!(
            "Sec-WebSocket-Accept {} does not match the key",
            net_text::Quoted(accept.unwrap_or(""))
        )));
    }
    if let Some(ext) = h("sec-websocket-extensions").filter(|e| !trim_ows(e).is_empty()) {
        return Err(fail(format!(
            "the server chose an extension not offered: {ext}"
        )));
    }
    match h("sec-websocket-protocol").map(trim_ows) {
        None | Some("") => Ok(None),
        Some(p) if offered.iter().any(|o| o == p) => Ok(Some(p.into())),
        Some(p) => Err(fail(format!(
            "the server chose subprotocol {}, not offered",
            net_text::Quoted(p)
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(status: u16, headers: &[(&str, &str)]) -> Head {
        Head {
            status,
            reason: "Switching Protocols".into(),
            version: 1,
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            len: 0,
        }
    }

    #[test]
    fn rfc_example_key_gives_its_accept() {
        // Section 1.3's example.
        let key = "dGhlIHNhbXBsZSBub25jZQ==";
        assert_eq!(base64(&accept_digest(key)), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
        assert_eq!(base64(b"the sample nonce"), key);
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b""), "");
    }

    #[test]
    fn answers_are_checked() {
        let key = "dGhlIHNhbXBsZSBub25jZQ==";
        let good = [
            ("Upgrade", "WebSocket"),
            ("Connection", "keep-alive, Upgrade"),
            ("Sec-WebSocket-Accept", "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="),
        ];
        assert_eq!(check(&head(101, &good), key, &[]).unwrap(), None);
        let offered = ["chat".to_string(), "superchat".to_string()];
        let mut chose = good.to_vec();
        chose.push(("Sec-WebSocket-Protocol", "superchat"));
        assert_eq!(
            check(&head(101, &chose), key, &offered).unwrap().as_deref(),
            Some("superchat")
        );
        assert!(check(&head(101, &chose), key, &offered[..1]).is_err());
        assert!(matches!(
            check(&head(200, &good), key, &[]),
            Err(WsError::Handshake(200, _))
        ));
        assert!(check(&head(101, &good[..2]), key, &[]).is_err());
        let mut ext = good.to_vec();
        ext.push(("Sec-WebSocket-Extensions", "permessage-deflate"));
        assert!(check(&head(101, &ext), key, &[]).is_err());
        assert!(check(&head(101, &good), "AAAAAAAAAAAAAAAAAAAAAA==", &[]).is_err());
        // `Connection: Upgrade` in a second Connection field counts.
        let split = [
            ("Upgrade", "websocket"),
            ("Connection", "keep-alive"),
            ("connection", "upgrade"),
            ("Sec-WebSocket-Accept", "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="),
        ];
        assert_eq!(check(&head(101, &split), key, &[]).unwrap(), None);
        assert!(check(&head(101, &split[..3]), key, &[]).is_err());
    }

    #[test]
    fn callers_cannot_set_the_handshake_headers() {
        let user = vec![("sec-websocket-key".to_string(), "x".to_string())];
        assert!(request_headers(&user, "k", &[]).is_err());
        let h = request_headers(
            &vec![("X-A".into(), "1".into())],
            "k",
            &["a".into(), "b".into()],
        )
        .unwrap();
        assert!(h.contains(&("Sec-WebSocket-Protocol".into(), "a, b".into())));
    }
}
