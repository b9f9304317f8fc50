//! `http://` URLs: host (name, IPv4, or bracketed IPv6), port, path and query.

#[allow(unused_imports)]
use crate::prelude::*;

use crate::HttpError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Url {
    /// As written, without brackets for IPv6.
    pub host: String,
    pub port: u16,
    /// Starts with `/`; includes the query.
    pub path: String,
    pub ipv6: bool,
}

impl Url {
    pub fn parse(text: &str) -> Result<Url, HttpError> {
        let bad = |why: &str| HttpError::InvalidUrl(format!("{text}: {why}"));
        let t = text.trim();
        let (scheme, rest) = t.split_once("://").ok_or_else(|| bad("no scheme"))?;
        if !scheme.eq_ignore_ascii_case("http") {
            return Err(HttpError::UnsupportedScheme(scheme.to_string()));
        }
        let (authority, path) = match rest.find(['/', '?', '#']) {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        let path = path.split('#').next().unwrap_or("/");
        let path = if path.starts_with('?') {
            format!("/{path}")
        } else {
            path.to_string()
        };
        if authority.contains('@') {
            return Err(bad("user info is not supported"));
        }
        let (host, port, ipv6) = if let Some(after) = authority.strip_prefix('[') {
            let (h, tail) = after.split_once(']').ok_or_else(|| bad("unclosed ["))?;
            net_text::parse_v6(h.as_bytes()).ok_or_else(|| bad("bad IPv6 address"))?;
            let port = match tail {
                "" => 80,
                p => p
                    .strip_prefix(':')
                    .ok_or_else(|| bad("junk after ]"))?
                    .parse()
                    .map_err(|_| bad("bad port"))?,
            };
            (h.to_string(), port, true)
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (
                    h.to_string(),
                    p.parse().map_err(|_| bad("bad port"))?,
                    false,
                ),
                None => (authority.to_string(), 80, false),
            }
        };
        if host.is_empty() {
            return Err(bad("empty host"));
        }
        if port == 0 {
            return Err(bad("port 0"));
        }
        if !ipv6
            && !host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-' || b == b'_')
        {
            return Err(bad("bad host"));
        }
        if path.bytes().any(|b| b <= b' ' || b == 0x7f) {
            return Err(bad("spaces or control characters in the path"));
        }
        Ok(Url {
            host,
            port,
            path,
            ipv6,
        })
    }

    /// The `Host` header value.
    pub fn authority(&self) -> String {
        let mut out = String::with_capacity(self.host.len() + 8);
        self.push_authority(&mut out);
        out
    }

    /// Append the `Host` header value (built by hand: it is on every request's path).
    pub fn push_authority(&self, out: &mut String) {
        if self.ipv6 {
            out.push('[');
            out.push_str(&self.host);
            out.push(']');
        } else {
            out.push_str(&self.host);
        }
        if self.port != 80 {
            out.push(':');
            net_text::push_decimal(out, u64::from(self.port));
        }
    }

    pub fn to_text(&self) -> String {
        let mut out = String::with_capacity(7 + self.host.len() + 8 + self.path.len());
        out.push_str("http://");
        self.push_authority(&mut out);
        out.push_str(&self.path);
        out
    }

    /// Resolve a `Location` header against this URL.
    pub fn join(&self, location: &str) -> Result<Url, HttpError> {
        let loc = location.trim();
        if loc.contains("://") {
            return Url::parse(loc);
        }
        if let Some(rest) = loc.strip_prefix("//") {
            return Url::parse(&format!("http://{rest}"));
        }
        let path = if loc.starts_with('/') {
            loc.to_string()
        } else {
            let base = self.path.split('?').next().unwrap_or("/");
            let dir = &base[..base.rfind('/').map(|i| i + 1).unwrap_or(0)];
            format!("{dir}{loc}")
        };
        Url::parse(&format!("http://{}{}", self.authority(), path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_hosts_ports_paths() {
        let u = Url::parse("http://[::1]:8080/a?b=1").unwrap();
        assert_eq!(
            (u.host.as_str(), u.port, u.path.as_str(), u.ipv6),
            ("::1", 8080, "/a?b=1", true)
        );
        assert_eq!(u.authority(), "[::1]:8080");
        let u = Url::parse("http://example.com").unwrap();
        assert_eq!((u.port, u.path.as_str()), (80, "/"));
        let u = Url::parse("http://127.0.0.1:9?x").unwrap();
        assert_eq!(u.path, "/?x");
        assert!(matches!(
            Url::parse("https://x/"),
            Err(HttpError::UnsupportedScheme(_))
        ));
        for bad in [
            "",
            "http://",
            "http://:80/",
            "http://h:0/",
            "http://h:99999/",
            "ftp//x",
            "http://[::1/",
            "http://a b/",
            "http://h/a b",
        ] {
            assert!(Url::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn joins_locations() {
        let u = Url::parse("http://h:81/a/b?q").unwrap();
        assert_eq!(u.join("/x").unwrap().to_text(), "http://h:81/x");
        assert_eq!(u.join("c").unwrap().to_text(), "http://h:81/a/c");
        assert_eq!(u.join("http://o/p").unwrap().to_text(), "http://o/p");
        assert_eq!(u.join("//o:5/p").unwrap().to_text(), "http://o:5/p");
    }
}
