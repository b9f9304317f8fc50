//! HTTP proxies (RFC 9110 section 9.3.6, RFC 9112 section 3.2.2): a plain `http` request goes
//! to the proxy in absolute form; an `https` one through a `CONNECT` tunnel, TLS inside it.

#[allow(unused_imports)]
use crate::prelude::*;

use crate::HttpError;

/// A proxy the requests go through: where it listens and its `Proxy-Authorization`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Proxy {
    pub host: String,
    pub port: u16,
    /// The whole header value (`Basic ...`), when the proxy URL has user information.
    pub authorization: Option<String>,
}

/// curl's default proxy port.
const DEFAULT_PORT: u16 = 1080;

impl Proxy {
    /// `[http://][user[:password]@]host[:port]`, as curl reads `-x` (user and password
    /// percent-decoded, the port 1080 when none is given). Other schemes are refused.
    pub fn parse(text: &str) -> Result<Proxy, HttpError> {
        let bad =
            |why: &str| HttpError::InvalidUrl(format!("proxy {}: {why}", net_text::Quoted(text)));
        let rest = match text.split_once("://") {
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case("http") => rest,
            Some((scheme, _)) => {
                return Err(bad(&format!(
                    "the {scheme} scheme is not supported (http only)"
                )));
            }
            None => text,
        };
        let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
        let (userinfo, hostport) = match authority.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, authority),
        };
        let (host, port) = split_host_port(hostport).ok_or_else(|| bad("bad host or port"))?;
        let authorization = match userinfo {
            Some(u) => {
                let decoded = percent_decode(u).ok_or_else(|| bad("bad percent-encoding"))?;
                Some(format!("Basic {}", encode_base64(&decoded)))
            }
            None => None,
        };
        Ok(Proxy {
            host,
            port,
            authorization,
        })
    }

    /// The `CONNECT` request for a tunnel to `authority` (`host:port`, IPv6 in brackets).
    pub fn connect_request(&self, authority: &str) -> Vec<u8> {
        let mut out = format!("CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n");
        if let Some(a) = &self.authorization {
            out.push_str("Proxy-Authorization: ");
            out.push_str(a);
            out.push_str("\r\n");
        }
        out.push_str("\r\n");
        out.into_bytes()
    }
}

fn split_host_port(s: &str) -> Option<(String, u16)> {
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let (h, after) = rest.split_once(']')?;
        net_text::parse_ip(h).filter(|ip| ip.is_ipv6())?;
        (h, after.strip_prefix(':'))
    } else {
        match s.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (s, None),
        }
    };
    let valid = |b: u8| b.is_ascii_alphanumeric() || b"-._:".contains(&b);
    if host.is_empty() || !host.bytes().all(valid) {
        return None;
    }
    let port = match port {
        Some(p) => p.parse::<u16>().ok().filter(|p| *p != 0)?,
        None => DEFAULT_PORT,
    };
    Some((host.to_ascii_lowercase(), port))
}

fn percent_decode(s: &str) -> Option<Vec<u8>> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    Some(out)
}

/// RFC 4648 base64 with padding.
pub fn encode_base64(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proxy_urls_as_curl_reads_them() {
        let p = Proxy::parse("http://u%40x:p%3Aw@127.0.0.1:3128").unwrap();
        assert_eq!((p.host.as_str(), p.port), ("127.0.0.1", 3128));
        // "u@x:p:w"
        assert_eq!(p.authorization.as_deref(), Some("Basic dUB4OnA6dw=="));
        let p = Proxy::parse("Proxy.Example:8080").unwrap();
        assert_eq!(
            (p.host.as_str(), p.port, p.authorization),
            ("proxy.example", 8080, None)
        );
        assert_eq!(Proxy::parse("[::1]").unwrap().port, 1080);
        assert_eq!(Proxy::parse("http://[::1]:3/").unwrap().host, "::1");
        for bad in [
            "socks5://h:1",
            "https://h:1",
            "h:0",
            "h:x",
            "",
            "[h]:1",
            "a b:1",
            "u%4@h",
        ] {
            assert!(Proxy::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn connect_requests_carry_credentials() {
        let p = Proxy::parse("http://a:b@h:1").unwrap();
        let wire = String::from_utf8(p.connect_request("[::1]:443")).unwrap();
        assert_eq!(
            wire,
            "CONNECT [::1]:443 HTTP/1.1\r\nHost: [::1]:443\r\nProxy-Authorization: Basic YTpi\r\n\r\n"
        );
    }

    #[test]
    fn base64_as_rfc4648() {
        for (plain, coded) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
        ] {
            assert_eq!(encode_base64(plain.as_bytes()), coded);
        }
    }
}
