//! Proxy URLs and `no_proxy` lists, as curl reads them: for `exec -x`, the proxy environment
//! variables and a scenario's `proxy:`.

/// An HTTP proxy: where it listens and the URL the executor is given (credentials in it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyUrl {
    pub host: String,
    pub port: u16,
    /// `http://[user:password@]host:port`, user and password percent-encoded.
    pub url: String,
}

/// curl's default proxy port.
const DEFAULT_PORT: u16 = 1080;

/// `[http://][user[:password]@]host[:port]` (the port 1080 when none is given, as curl);
/// `credentials` (`user:password`, curl's `--proxy-user`) replace the URL's.
pub fn parse(text: &str, credentials: Option<&str>) -> Result<ProxyUrl, String> {
    let full = if text.contains("://") {
        text.to_string()
    } else {
        format!("http://{text}")
    };
    let mut u = url::Url::parse(&full).map_err(|e| format!("proxy {text:?}: {e}"))?;
    if u.scheme() != "http" {
        return Err(format!(
            "proxy {text:?}: the {} scheme is not supported (an http:// proxy; https to the target goes through its CONNECT tunnel)",
            u.scheme()
        ));
    }
    let host = match u.host() {
        Some(url::Host::Ipv6(ip)) => ip.to_string(),
        Some(h) => h.to_string(),
        None => return Err(format!("proxy {text:?}: no host")),
    };
    let port = u.port().unwrap_or(DEFAULT_PORT);
    let _ = u.set_port(Some(port));
    if let Some(c) = credentials {
        let (user, password) = c.split_once(':').unwrap_or((c, ""));
        let _ = u.set_username(user);
        let _ = u.set_password(Some(password));
    }
    u.set_path("");
    u.set_query(None);
    u.set_fragment(None);
    let url = u.as_str().trim_end_matches('/').to_string();
    Ok(ProxyUrl { host, port, url })
}

/// Whether `host` (a name or an address, IPv6 with or without brackets) is in a `no_proxy`
/// list, as curl matches it: `*` is every host; an entry is the host itself or a domain it
/// is under (a leading dot or not); an address entry may be a CIDR block.
pub fn bypassed(no_proxy: &str, host: &str) -> bool {
    let host = host.trim_matches(['[', ']']).to_ascii_lowercase();
    let host = host.trim_end_matches('.');
    let ip: Option<std::net::IpAddr> = host.parse().ok();
    no_proxy
        .split([',', ' '])
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .any(|entry| {
            if entry == "*" {
                return true;
            }
            let entry = entry.trim_matches(['[', ']']).to_ascii_lowercase();
            if let Some(hit) = ip.and_then(|ip| in_block(&entry, ip)) {
                return hit;
            }
            let entry = entry.trim_start_matches('.').trim_end_matches('.');
            host == entry || host.strip_suffix(entry).is_some_and(|h| h.ends_with('.'))
        })
}

/// Whether `ip` is in `entry` when it is an address or a CIDR block; `None` when it is neither.
fn in_block(entry: &str, ip: std::net::IpAddr) -> Option<bool> {
    use std::net::IpAddr;
    let (addr, bits) = match entry.split_once('/') {
        Some((a, b)) => (a.parse::<IpAddr>().ok()?, b.parse::<u32>().ok()?),
        None => {
            let a = entry.parse::<IpAddr>().ok()?;
            (a, if a.is_ipv4() { 32 } else { 128 })
        }
    };
    Some(match (addr, ip) {
        (IpAddr::V4(a), IpAddr::V4(b)) if bits <= 32 => {
            let mask = u32::MAX.checked_shl(32 - bits).unwrap_or(0);
            u32::from(a) & mask == u32::from(b) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(b)) if bits <= 128 => {
            let mask = u128::MAX.checked_shl(128 - bits).unwrap_or(0);
            u128::from(a) & mask == u128::from(b) & mask
        }
        _ => false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proxy_urls_as_curl_reads_them() {
        let p = parse("127.0.0.1:3128", None).unwrap();
        assert_eq!((p.host.as_str(), p.port), ("127.0.0.1", 3128));
        assert_eq!(p.url, "http://127.0.0.1:3128");
        let p = parse("http://[::1]", Some("al ice:p@ss")).unwrap();
        assert_eq!((p.host.as_str(), p.port), ("::1", 1080));
        assert_eq!(p.url, "http://al%20ice:p%40ss@[::1]:1080");
        let p = parse("http://u:p@proxy.test:8080/x?y", None).unwrap();
        assert_eq!(p.url, "http://u:p@proxy.test:8080");
        for bad in ["socks5://h:1", "https://h:3128", "http://:1", "h:99999"] {
            assert!(parse(bad, None).is_err(), "{bad}");
        }
    }

    #[test]
    fn no_proxy_as_curl_matches() {
        assert!(bypassed("*", "anything"));
        assert!(bypassed("example.com", "example.com"));
        assert!(bypassed("example.com", "www.Example.com"));
        assert!(bypassed(".example.com", "www.example.com"));
        assert!(!bypassed("example.com", "badexample.com"));
        assert!(bypassed("localhost, 127.0.0.0/8", "127.0.0.9"));
        assert!(!bypassed("127.0.0.0/8", "128.0.0.1"));
        assert!(bypassed("::1", "[::1]"));
        assert!(!bypassed("", "example.com"));
    }
}
