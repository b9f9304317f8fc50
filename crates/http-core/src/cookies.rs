//! A user's cookie jar (RFC 6265): `Set-Cookie` stored by domain and path with expiry,
//! `Cookie` built for each request. Bounded: at most [`MAX_COOKIES`] cookies (the oldest go
//! first) of at most [`MAX_COOKIE_BYTES`] each, as RFC 6265 section 6.1 suggests.

#[allow(unused_imports)]
use crate::prelude::*;

use crate::Url;
use crate::codec::trim_ows;

/// RFC 6265 section 6.1's floor for a user agent's cookies.
pub const MAX_COOKIES: usize = 3000;
/// Name, value and attributes of one cookie (section 6.1).
pub const MAX_COOKIE_BYTES: usize = 4096;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cookie {
    pub name: String,
    pub value: String,
    /// Lower case, without a leading dot.
    pub domain: String,
    /// Sent to `domain` only, not its subdomains (no `Domain` attribute).
    pub host_only: bool,
    pub path: String,
    pub secure: bool,
    pub http_only: bool,
    /// Unix seconds; `None` for a session cookie.
    pub expires: Option<u64>,
}

#[derive(Debug, Default, Clone)]
pub struct Jar {
    /// In creation order (replacing a cookie keeps its place).
    cookies: Vec<Cookie>,
}

/// Section 5.1.3: `host` is `domain` or under it (never for an address).
fn domain_match(host: &str, domain: &str) -> bool {
    host == domain
        || (host.len() > domain.len()
            && host.ends_with(domain)
            && host.as_bytes()[host.len() - domain.len() - 1] == b'.'
            && net_text::parse_ip(host).is_none())
}

/// Section 5.1.4.
fn path_match(request: &str, cookie: &str) -> bool {
    request == cookie
        || (request.starts_with(cookie)
            && (cookie.ends_with('/') || request.as_bytes().get(cookie.len()) == Some(&b'/')))
}

/// Section 5.1.4's default-path: the URL's path up to its last `/`, or `/`.
fn default_path(url_path: &str) -> String {
    let path = url_path.split('?').next().unwrap_or("/");
    match path.rfind('/') {
        Some(0) | None => "/".into(),
        Some(i) => path[..i].into(),
    }
}

fn url_path(url: &Url) -> &str {
    url.path.split('?').next().unwrap_or("/")
}

/// Section 5.2's `Set-Cookie` as received from `url` at `now` (Unix seconds); `None` when
/// it is to be ignored.
fn parse(url: &Url, line: &str, now: u64) -> Option<Cookie> {
    if line.len() > MAX_COOKIE_BYTES {
        return None;
    }
    let mut parts = line.split(';');
    let (name, value) = parts.next()?.split_once('=')?;
    let (name, value) = (trim_ows(name), trim_ows(value));
    if name.is_empty() {
        return None;
    }
    let host = url.host.to_ascii_lowercase();
    let mut c = Cookie {
        name: name.into(),
        value: value.into(),
        domain: host.clone(),
        host_only: true,
        path: default_path(&url.path),
        secure: false,
        http_only: false,
        expires: None,
    };
    let mut max_age: Option<i64> = None;
    for attr in parts {
        let (k, v) = attr.split_once('=').unwrap_or((attr, ""));
        let (k, v) = (trim_ows(k).to_ascii_lowercase(), trim_ows(v));
        match k.as_str() {
            "expires" => {
                if let Some(t) = crate::date::parse_http_date(v) {
                    c.expires = Some(t);
                }
            }
            "max-age" => max_age = v.parse().ok().or(max_age),
            "domain" if !v.is_empty() => {
                let d = v.trim_start_matches('.').to_ascii_lowercase();
                if !domain_match(&host, &d) {
                    return None;
                }
                c.domain = d;
                c.host_only = false;
            }
            "path" if v.starts_with('/') => c.path = v.into(),
            "secure" => c.secure = true,
            "httponly" => c.http_only = true,
            _ => {}
        }
    }
    // Max-Age wins over Expires; zero or less expires it now.
    if let Some(s) = max_age {
        c.expires = Some(if s <= 0 {
            0
        } else {
            now.saturating_add(s as u64)
        });
    }
    Some(c)
}

impl Jar {
    pub fn is_empty(&self) -> bool {
        self.cookies.is_empty()
    }

    pub fn cookies(&self) -> &[Cookie] {
        &self.cookies
    }

    /// Put `c` in, replacing the cookie of the same name, domain and path; an expired one
    /// deletes it.
    pub fn add(&mut self, c: Cookie, now: u64) {
        let same = |o: &Cookie| o.name == c.name && o.domain == c.domain && o.path == c.path;
        let at = self.cookies.iter().position(same);
        let expired = c.expires.is_some_and(|t| t <= now);
        match (at, expired) {
            (Some(i), true) => {
                self.cookies.remove(i);
            }
            (Some(i), false) => self.cookies[i] = c,
            (None, true) => {}
            (None, false) => {
                self.cookies.retain(|o| o.expires.is_none_or(|t| t > now));
                if self.cookies.len() >= MAX_COOKIES {
                    self.cookies.remove(0);
                }
                self.cookies.push(c);
            }
        }
    }

    /// Store a `Set-Cookie` header received from `url`.
    pub fn store(&mut self, url: &Url, set_cookie: &str, now: u64) {
        if let Some(c) = parse(url, set_cookie, now) {
            self.add(c, now);
        }
    }

    /// The `Cookie` header for a request to `url` (section 5.4): longer paths first, then
    /// older cookies; `None` when no cookie matches.
    pub fn header(&self, url: &Url, now: u64) -> Option<String> {
        let host = url.host.to_ascii_lowercase();
        let path = url_path(url);
        let mut hits: Vec<(usize, &Cookie)> = self
            .cookies
            .iter()
            .enumerate()
            .filter(|(_, c)| {
                let domain_ok = if c.host_only {
                    host == c.domain
                } else {
                    domain_match(&host, &c.domain)
                };
                domain_ok
                    && path_match(path, &c.path)
                    && (!c.secure || url.tls)
                    && c.expires.is_none_or(|t| t > now)
            })
            .collect();
        if hits.is_empty() {
            return None;
        }
        // Longer paths first, creation order kept (an insertion sort: a few cookies, and no
        // sort routine in the component).
        for k in 1..hits.len() {
            let mut j = k;
            while j > 0 && hits[j - 1].1.path.len() < hits[j].1.path.len() {
                hits.swap(j - 1, j);
                j -= 1;
            }
        }
        let mut out = String::new();
        for (_, c) in hits {
            if !out.is_empty() {
                out.push_str("; ");
            }
            out.push_str(&c.name);
            out.push('=');
            out.push_str(&c.value);
        }
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    #[test]
    fn domains_paths_and_secure_as_rfc_6265() {
        let mut jar = Jar::default();
        let from = url("http://www.example.test/app/login");
        jar.store(&from, "sid=1; Path=/app; HttpOnly", 100);
        jar.store(&from, "site=2; Domain=.Example.test; Path=/", 100);
        jar.store(&from, "here=3", 100);
        jar.store(&from, "s=4; Secure; Path=/", 100);
        jar.store(&from, "other=5; Domain=elsewhere.test", 100);
        jar.store(&from, "noequals", 100);
        let h = |u: &str| jar.header(&url(u), 100);
        assert_eq!(
            h("http://www.example.test/app/x").as_deref(),
            Some("sid=1; here=3; site=2")
        );
        assert_eq!(h("http://a.example.test/app").as_deref(), Some("site=2"));
        assert_eq!(
            h("https://www.example.test/").as_deref(),
            Some("site=2; s=4")
        );
        assert_eq!(
            h("http://www.example.test/apple").as_deref(),
            Some("site=2")
        );
        assert_eq!(h("http://elsewhere.test/"), None);
        assert_eq!(jar.cookies().len(), 4);
        assert!(jar.cookies()[0].http_only && jar.cookies()[0].host_only);
        assert!(!jar.cookies()[1].host_only);
    }

    #[test]
    fn replaced_expired_and_deleted() {
        let mut jar = Jar::default();
        let u = url("http://h.test/");
        jar.store(&u, "a=1", 100);
        jar.store(&u, "b=1; Max-Age=10", 100);
        jar.store(&u, "a=2", 100);
        assert_eq!(jar.header(&u, 105).as_deref(), Some("a=2; b=1"));
        assert_eq!(jar.header(&u, 111).as_deref(), Some("a=2"));
        jar.store(&u, "a=gone; Max-Age=0", 120);
        assert_eq!(jar.header(&u, 120), None);
        jar.store(
            &u,
            "c=1; Expires=Wed, 21 Oct 2015 07:28:00 GMT",
            2_000_000_000,
        );
        assert_eq!(jar.header(&u, 2_000_000_000), None);
        assert!(jar.cookies().iter().all(|c| c.name != "c"));
        jar.store(
            &u,
            "d=1; Expires=Wed, 21 Oct 2015 07:28:00 GMT; Max-Age=60",
            2_000_000_000,
        );
        assert_eq!(jar.header(&u, 2_000_000_001).as_deref(), Some("d=1"));
    }

    #[test]
    fn addresses_match_only_themselves() {
        let mut jar = Jar::default();
        let u = url("http://127.0.0.1:8080/");
        jar.store(&u, "a=1; Domain=0.0.1", 1);
        jar.store(&u, "b=1", 1);
        assert_eq!(
            jar.header(&url("http://127.0.0.1:9/"), 1).as_deref(),
            Some("b=1")
        );
        assert_eq!(jar.header(&url("http://127.0.0.2/"), 1), None);
    }

    #[test]
    fn bounded() {
        let mut jar = Jar::default();
        let u = url("http://h.test/");
        for i in 0..MAX_COOKIES + 5 {
            jar.store(&u, &format!("c{i}=v"), 1);
        }
        assert_eq!(jar.cookies().len(), MAX_COOKIES);
        assert_eq!(jar.cookies()[0].name, "c5");
        jar.store(&u, &format!("big={}", "x".repeat(MAX_COOKIE_BYTES)), 1);
        assert!(jar.cookies().iter().all(|c| c.name != "big"));
    }
}
