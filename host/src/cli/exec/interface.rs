//! `--interface`: an address, or the first address of a network interface by name.

use std::net::IpAddr;

/// `text` as an address, or the first address (of IPv6 with `v6`, else IPv4) of the
/// interface so named.
pub fn address_of(text: &str, v6: bool) -> Result<IpAddr, String> {
    let name = text
        .strip_prefix("if!")
        .or_else(|| text.strip_prefix("host!"))
        .unwrap_or(text);
    if let Ok(ip) = name.trim_matches(['[', ']']).parse() {
        return Ok(ip);
    }
    interface_addresses(name)?
        .into_iter()
        .find(|ip| ip.is_ipv6() == v6)
        .ok_or_else(|| {
            let family = if v6 { "IPv6" } else { "IPv4" };
            format!("--interface {text}: no such interface, or it has no {family} address")
        })
}

/// The addresses of the interface `name` (getifaddrs(3)).
fn interface_addresses(name: &str) -> Result<Vec<IpAddr>, String> {
    let mut head: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs fills `head` with a list freed below by freeifaddrs.
    if unsafe { libc::getifaddrs(&mut head) } != 0 {
        return Err(format!(
            "listing interfaces: {}",
            std::io::Error::last_os_error()
        ));
    }
    let mut out = Vec::new();
    let mut cur = head;
    while !cur.is_null() {
        // SAFETY: `cur` is a node of the list getifaddrs returned, not yet freed.
        let ifa = unsafe { &*cur };
        // SAFETY: ifa_name is a NUL-terminated string for every node.
        let ifname = unsafe { std::ffi::CStr::from_ptr(ifa.ifa_name) };
        if ifname.to_bytes() == name.as_bytes() && !ifa.ifa_addr.is_null() {
            // SAFETY: ifa_addr points at a sockaddr whose family says its real type.
            unsafe {
                match i32::from((*ifa.ifa_addr).sa_family) {
                    libc::AF_INET => {
                        let sin = &*(ifa.ifa_addr as *const libc::sockaddr_in);
                        out.push(IpAddr::from(
                            u32::from_be(sin.sin_addr.s_addr).to_be_bytes(),
                        ));
                    }
                    libc::AF_INET6 => {
                        let sin6 = &*(ifa.ifa_addr as *const libc::sockaddr_in6);
                        out.push(IpAddr::from(sin6.sin6_addr.s6_addr));
                    }
                    _ => {}
                }
            }
        }
        cur = ifa.ifa_next;
    }
    // SAFETY: `head` came from getifaddrs and is freed once.
    unsafe { libc::freeifaddrs(head) };
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_by_name_and_address() {
        assert_eq!(
            address_of("127.0.0.7", false).unwrap().to_string(),
            "127.0.0.7"
        );
        assert_eq!(address_of("lo", false).unwrap().to_string(), "127.0.0.1");
        assert!(address_of("no-such-interface0", false).is_err());
    }
}
