//! Conversions between our text addresses and `wasi:sockets` addresses.

use alloc::format;
use alloc::string::ToString;
use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use net_text::Quoted;

use wasip2::sockets::network::{
    IpAddress, IpAddressFamily, IpSocketAddress, Ipv4SocketAddress, Ipv6SocketAddress,
};

use crate::{AddressFamily, SocketAddress, SocketError};

pub fn wasi_family(f: AddressFamily) -> IpAddressFamily {
    match f {
        AddressFamily::Ipv4 => IpAddressFamily::Ipv4,
        AddressFamily::Ipv6 => IpAddressFamily::Ipv6,
    }
}

/// An IP literal; IPv6 may be written in brackets (`[::1]`).
pub fn parse_ip(host: &str) -> Result<IpAddr, SocketError> {
    if host.is_empty() {
        return Err(SocketError::InvalidInput("empty address".to_string()));
    }
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    net_text::parse_ip(bare)
        .ok_or_else(|| SocketError::InvalidInput(format!("not an IP address: {}", Quoted(host))))
}

/// A host name by RFC 1123 shape: letters, digits, hyphens and dots, not all digits and dots
/// (so `300.1.1.1` is a malformed address, not a name to look up).
pub fn looks_like_name(host: &str) -> bool {
    !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
        && !host.bytes().all(|b| b.is_ascii_digit() || b == b'.')
}

pub fn to_socket_address(
    ip: IpAddr,
    port: u16,
    family: AddressFamily,
) -> Result<IpSocketAddress, SocketError> {
    match (ip, family) {
        (IpAddr::V4(v4), AddressFamily::Ipv4) => {
            let o = v4.octets();
            Ok(IpSocketAddress::Ipv4(Ipv4SocketAddress {
                port,
                address: (o[0], o[1], o[2], o[3]),
            }))
        }
        (IpAddr::V6(v6), AddressFamily::Ipv6) => {
            let s = v6.segments();
            Ok(IpSocketAddress::Ipv6(Ipv6SocketAddress {
                port,
                flow_info: 0,
                address: (s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7]),
                scope_id: 0,
            }))
        }
        (ip, family) => Err(SocketError::InvalidInput(format!(
            "address {} does not match the socket's family {}",
            net_text::format_ip(ip),
            family_name(family)
        ))),
    }
}

pub fn from_wasi_ip(ip: IpAddress) -> IpAddr {
    match ip {
        IpAddress::Ipv4((a, b, c, d)) => IpAddr::V4(Ipv4Addr::new(a, b, c, d)),
        IpAddress::Ipv6((a, b, c, d, e, f, g, h)) => {
            IpAddr::V6(Ipv6Addr::new(a, b, c, d, e, f, g, h))
        }
    }
}

pub fn family_name(family: AddressFamily) -> &'static str {
    match family {
        AddressFamily::Ipv4 => "IPv4",
        AddressFamily::Ipv6 => "IPv6",
    }
}

pub fn format_address(addr: IpSocketAddress) -> SocketAddress {
    match addr {
        IpSocketAddress::Ipv4(a) => SocketAddress {
            host: net_text::format_ip(from_wasi_ip(IpAddress::Ipv4(a.address))),
            port: a.port,
        },
        IpSocketAddress::Ipv6(a) => SocketAddress {
            host: net_text::format_ip(from_wasi_ip(IpAddress::Ipv6(a.address))),
            port: a.port,
        },
    }
}
