//! `http://` and `https://` URLs: host (name, IPv4, or bracketed IPv6), port, path and query.

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
    /// `https`: TLS over the connection.
    pub tls: bool,
}

impl Url {
    pub fn parse(text: &str) -> Result<Url, HttpError> {
        let bad = |why: &str| HttpError::InvalidUrl(format!("{text}: {why}"));
        let t = text.trim_ascii();
        if !has_scheme(t) {
            return Err(bad("no scheme"));
        }
        let (scheme, rest) = t.split_once(':').unwrap_or((t, ""));
        let tls = if scheme.eq_ignore_ascii_case("https") {
            true
        } else if scheme.eq_ignore_ascii_case("http") {
            false
        } else {
            return Err(HttpError::UnsupportedScheme(scheme.to_string()));
        };
        let default_port = if tls { 443 } else { 80 };
        let rest = rest
            .strip_prefix("//")
            .ok_or_else(|| bad("no // after the scheme"))?;
        let (authority, path) = match rest.find(['/', '?', '#']) {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        let path = path.split('#').next().unwrap_or("/");
        let path = if path.starts_with('?') {
            let mut p = String::from("/");
            p.push_str(path);
            p
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
                "" => default_port,
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
                None => (authority.to_string(), default_port, false),
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
        let path = percent_encode_non_ascii(&path);
        let path = match path.split_once('?') {
            Some((p, q)) if has_dot_segment(p) => {
                let mut clean = remove_dot_segments(p);
                clean.push('?');
                clean.push_str(q);
                clean
            }
            None if has_dot_segment(&path) => remove_dot_segments(&path),
            _ => path,
        };
        Ok(Url {
            host,
            port,
            path,
            ipv6,
            tls,
        })
    }

    pub fn scheme(&self) -> &'static str {
        if self.tls { "https" } else { "http" }
    }

    fn default_port(&self) -> u16 {
        if self.tls { 443 } else { 80 }
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
        if self.port != self.default_port() {
            out.push(':');
            net_text::push_decimal(out, u64::from(self.port));
        }
    }

    pub fn to_text(&self) -> String {
        let mut out = String::with_capacity(8 + self.host.len() + 8 + self.path.len());
        out.push_str(self.scheme());
        out.push_str("://");
        self.push_authority(&mut out);
        out.push_str(&self.path);
        out
    }

    /// Resolve a `Location` header against this URL (RFC 3986 section 5.2: a scheme makes it
    /// absolute; `//` keeps the scheme; `/` the authority; `?` the path; an empty one is this
    /// URL; anything else is merged with this path's directory; dot segments are removed).
    pub fn join(&self, location: &str) -> Result<Url, HttpError> {
        let loc = crate::codec::trim_ows(location);
        let loc = loc.split('#').next().unwrap_or("");
        if has_scheme(loc) {
            return Url::parse(loc);
        }
        if let Some(rest) = loc.strip_prefix("//") {
            let mut target = String::from(self.scheme());
            target.push_str("://");
            target.push_str(rest);
            return Url::parse(&target);
        }
        let (base_path, base_query) = match self.path.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (self.path.as_str(), None),
        };
        let (ref_path, ref_query) = match loc.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (loc, None),
        };
        let (path, query) = if ref_path.is_empty() {
            (base_path.to_string(), ref_query.or(base_query))
        } else if ref_path.starts_with('/') {
            (ref_path.to_string(), ref_query)
        } else {
            let dir = &base_path[..base_path.rfind('/').map(|i| i + 1).unwrap_or(0)];
            let mut merged = String::from(dir);
            merged.push_str(ref_path);
            (merged, ref_query)
        };
        let mut target = String::from(self.scheme());
        target.push_str("://");
        self.push_authority(&mut target);
        target.push_str(&path);
        if let Some(q) = query {
            target.push('?');
            target.push_str(q);
        }
        Url::parse(&target)
    }
}

/// Whether a reference starts with a scheme (`ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ) ":"`
/// before any `/`, `?` or `#`): `/x?next=http://y` and `?a=b:c` have none.
fn has_scheme(reference: &str) -> bool {
    let Some(colon) = reference.find(':') else {
        return false;
    };
    let scheme = &reference[..colon];
    scheme
        .as_bytes()
        .first()
        .is_some_and(u8::is_ascii_alphabetic)
        && scheme
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b))
}

/// RFC 3986 section 5.2.4: `.` and `..` segments removed from an absolute path.
fn has_dot_segment(path: &str) -> bool {
    path.as_bytes().windows(2).any(|w| w == b"/.")
}

pub fn remove_dot_segments(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    let mut segments = path.split('/').skip(1).peekable();
    while let Some(seg) = segments.next() {
        if seg == "." || seg == ".." {
            if seg == ".."
                && let Some(i) = out.rfind('/')
            {
                out.truncate(i);
            }
            // A path ending in `.` or `..` still names a directory.
            if segments.peek().is_none() {
                out.push('/');
            }
        } else {
            out.push('/');
            out.push_str(seg);
        }
    }
    if out.is_empty() {
        out.push('/');
    }
    out
}

/// Bytes a request line cannot carry as they are (non-ASCII: a UTF-8 path or query) are
/// percent-encoded, as browsers and curl send them (RFC 3986 section 2.1).
fn percent_encode_non_ascii(path: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = Vec::with_capacity(path.len());
    for &b in path.as_bytes() {
        if b < 0x80 {
            out.push(b);
        } else {
            out.extend_from_slice(&[b'%', HEX[usize::from(b >> 4)], HEX[usize::from(b & 15)]]);
        }
    }
    // ASCII only by now.
    String::from_utf8(out).unwrap_or_default()
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
        let u = Url::parse("https://x/").unwrap();
        assert_eq!(
            (u.port, u.tls, u.to_text().as_str()),
            (443, true, "https://x/")
        );
        let u = Url::parse("HTTPS://x:8443/a").unwrap();
        assert_eq!((u.port, u.authority().as_str()), (8443, "x:8443"));
        assert_eq!(
            Url::parse("https://x/a/b")
                .unwrap()
                .join("//y/z")
                .unwrap()
                .to_text(),
            "https://y/z"
        );
        assert_eq!(
            Url::parse("https://x/a/b")
                .unwrap()
                .join("c?d")
                .unwrap()
                .to_text(),
            "https://x/a/c?d"
        );
        assert_eq!(
            Url::parse("http://x/")
                .unwrap()
                .join("https://x/")
                .unwrap()
                .to_text(),
            "https://x/"
        );
        assert!(matches!(
            Url::parse("ftp://x/"),
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

    /// RFC 3986 section 5.4's examples (normal and abnormal), with http for the base scheme;
    /// and what the redirect tests found.
    #[test]
    fn joins_as_rfc_3986_resolves() {
        let base = Url::parse("http://a/b/c/d;p?q").unwrap();
        for (r, want) in [
            ("g", "http://a/b/c/g"),
            ("./g", "http://a/b/c/g"),
            ("g/", "http://a/b/c/g/"),
            ("/g", "http://a/g"),
            ("//g", "http://g/"),
            ("?y", "http://a/b/c/d;p?y"),
            ("g?y", "http://a/b/c/g?y"),
            ("#s", "http://a/b/c/d;p?q"),
            ("g#s", "http://a/b/c/g"),
            ("g?y#s", "http://a/b/c/g?y"),
            (";x", "http://a/b/c/;x"),
            ("g;x", "http://a/b/c/g;x"),
            ("", "http://a/b/c/d;p?q"),
            (".", "http://a/b/c/"),
            ("./", "http://a/b/c/"),
            ("..", "http://a/b/"),
            ("../", "http://a/b/"),
            ("../g", "http://a/b/g"),
            ("../..", "http://a/"),
            ("../../", "http://a/"),
            ("../../g", "http://a/g"),
            ("../../../g", "http://a/g"),
            ("../../../../g", "http://a/g"),
            ("/./g", "http://a/g"),
            ("/../g", "http://a/g"),
            ("g.", "http://a/b/c/g."),
            (".g", "http://a/b/c/.g"),
            ("g..", "http://a/b/c/g.."),
            ("..g", "http://a/b/c/..g"),
            ("./../g", "http://a/b/g"),
            ("./g/.", "http://a/b/c/g/"),
            ("g/./h", "http://a/b/c/g/h"),
            ("g/../h", "http://a/b/c/h"),
            ("g;x=1/./y", "http://a/b/c/g;x=1/y"),
            ("g;x=1/../y", "http://a/b/c/y"),
            ("g?y/./x", "http://a/b/c/g?y/./x"),
            ("g?y/../x", "http://a/b/c/g?y/../x"),
            (
                "/ok?next=http://example.invalid/x",
                "http://a/ok?next=http://example.invalid/x",
            ),
            ("HTTP://o/p", "http://o/p"),
        ] {
            assert_eq!(
                base.join(r).map(|u| u.to_text()),
                Ok(want.to_string()),
                "{r:?}"
            );
        }
        assert!(matches!(
            base.join("g:h"),
            Err(HttpError::UnsupportedScheme(_))
        ));
    }

    #[test]
    fn non_ascii_is_percent_encoded() {
        let u = Url::parse("http://h/caf\u{e9}/\u{65e5}?q=\u{2192}").unwrap();
        assert_eq!(u.path, "/caf%C3%A9/%E6%97%A5?q=%E2%86%92");
    }
}
