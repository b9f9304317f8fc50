//! The host's own `wasi:sockets` TCP, in place of wasmtime-wasi's.
//!
//! wasmtime-wasi's TCP waits for every connection through the event loop, zeroes a buffer of
//! the size asked for on every read, boxes a future for every write (spawning a task when the
//! socket is full) and locks a mutex around each operation. Here `start-connect` calls
//! `connect(2)` and finds the outcome without a wait when the kernel has it (`connect.rs`); a
//! read reads into an uninitialised buffer of the size asked for; a write goes to the kernel
//! in the call, from the guest's memory where the bytes lie (`direct.rs`: wasmtime-wasi copies
//! them out first), and only what the socket will not take is copied and left to a task
//! (`streams.rs`); waits are tokio's readiness on the calling thread's runtime. Sockets, their
//! states and their errors follow wasmtime-wasi's (and WASI 0.2's) rules; UDP, name lookup and
//! the network stay wasmtime-wasi's.
//!
//! [`SocketsImpl::for_run`] chooses between the two (`SCHEDULER_SOCKETS=own|wasmtime`), so that
//! one is measured against the other.

mod connect;
mod direct;
mod host;
mod options;
pub(crate) mod streams;
mod tcp;

use std::net::{IpAddr, Ipv6Addr, SocketAddr};

use wasmtime::component::{HasData, Linker, ResourceTable};
pub use wasmtime_wasi::sockets::SocketAddrUse;

pub use direct::OwnStreams;
pub use tcp::TcpSocket;

mod bindings {
    wasmtime::component::bindgen!({
        path: ["../wit/deps/io", "wit/clocks", "wit/sockets", "wit/host-sockets"],
        world: "scheduler:host-sockets/tcp",
        with: {
            "wasi:io": wasmtime_wasi::p2::bindings::io,
            "wasi:clocks": wasmtime_wasi::p2::bindings::clocks,
            "wasi:sockets/network": wasmtime_wasi::p2::bindings::sockets::network,
            "wasi:sockets/tcp.tcp-socket": super::TcpSocket,
        },
        trappable_error_type: {
            "wasi:sockets/network.error-code" => wasmtime_wasi::p2::SocketError,
        },
        imports: { default: trappable },
        require_store_data_send: true,
    });
}

/// Whether an address may be used so: the user's policy.
pub trait AddrCheck: Send + Sync {
    fn allows(&self, addr: SocketAddr, usage: SocketAddrUse) -> bool;
}

impl<F: Fn(SocketAddr, SocketAddrUse) -> bool + Send + Sync> AddrCheck for F {
    fn allows(&self, addr: SocketAddr, usage: SocketAddrUse) -> bool {
        self(addr, usage)
    }
}

impl AddrCheck for std::sync::Arc<dyn Fn(SocketAddr, SocketAddrUse) -> bool + Send + Sync> {
    fn allows(&self, addr: SocketAddr, usage: SocketAddrUse) -> bool {
        self(addr, usage)
    }
}

/// What the sockets need of an instance's store: its table, its policy, and where its
/// connections' output streams are (for writes straight from the guest's memory).
pub struct SocketsView<'a> {
    pub table: &'a mut ResourceTable,
    pub check: &'a dyn AddrCheck,
    pub streams: &'a mut OwnStreams,
}

/// What the store's data gives the sockets.
pub trait SocketsHostView: Send {
    fn sockets_view(&mut self) -> SocketsView<'_>;
}

struct HasSockets;
impl HasData for HasSockets {
    type Data<'a> = SocketsView<'a>;
}

/// Put the own TCP in place of wasmtime-wasi's in a linker that has wasmtime-wasi's WASI.
pub fn add_to_linker<T: SocketsHostView + 'static>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    let r = bindings::wasi::sockets::tcp::add_to_linker::<_, HasSockets>(linker, T::sockets_view)
        .and_then(|()| {
            bindings::wasi::sockets::tcp_create_socket::add_to_linker::<_, HasSockets>(
                linker,
                T::sockets_view,
            )
        })
        .and_then(|()| direct::add_to_linker(linker));
    linker.allow_shadowing(false);
    r
}

/// Which implementation of TCP a run's instances get.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SocketsImpl {
    /// This module's (the default).
    Own,
    /// wasmtime-wasi's, for comparison.
    Wasmtime,
}

impl SocketsImpl {
    /// `SCHEDULER_SOCKETS`: `own` (also when unset or empty) or `wasmtime`; anything else is
    /// refused.
    pub fn for_run() -> Result<SocketsImpl, String> {
        match std::env::var("SCHEDULER_SOCKETS")
            .unwrap_or_default()
            .as_str()
        {
            "" | "own" => Ok(SocketsImpl::Own),
            "wasmtime" => Ok(SocketsImpl::Wasmtime),
            other => Err(format!(
                "SCHEDULER_SOCKETS={other:?}: expected \"own\" or \"wasmtime\""
            )),
        }
    }
}

/// The address families a socket is made in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Family {
    V4,
    V6,
}

/// Not multicast, not broadcast (WASI's unicast).
fn unicast(ip: IpAddr) -> bool {
    match ip.to_canonical() {
        IpAddr::V4(v4) => !v4.is_multicast() && !v4.is_broadcast(),
        IpAddr::V6(v6) => !v6.is_multicast(),
    }
}

/// `ip` is of `family`; IPv4-mapped and deprecated IPv4-compatible IPv6 addresses are not.
fn of_family(ip: IpAddr, family: Family) -> bool {
    match (family, ip) {
        (Family::V4, IpAddr::V4(_)) => true,
        (Family::V6, IpAddr::V6(v6)) => {
            let compatible = matches!(v6.segments(), [0, 0, 0, 0, 0, 0, _, _])
                && v6 != Ipv6Addr::UNSPECIFIED
                && v6 != Ipv6Addr::LOCALHOST;
            !compatible && v6.to_ipv4_mapped().is_none()
        }
        _ => false,
    }
}

/// A remote address: a port, and an address that is not unspecified.
fn remote(addr: SocketAddr) -> bool {
    !addr.ip().to_canonical().is_unspecified() && addr.port() != 0
}

/// The unspecified address of `family`, port 0.
fn unspecified(family: Family) -> SocketAddr {
    match family {
        Family::V4 => SocketAddr::from(([0, 0, 0, 0], 0)),
        Family::V6 => SocketAddr::from((Ipv6Addr::UNSPECIFIED, 0)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_and_addresses_as_wasi_has_them() {
        let v4: IpAddr = "127.0.0.2".parse().unwrap();
        let mapped: IpAddr = "::ffff:127.0.0.1".parse().unwrap();
        assert!(of_family(v4, Family::V4) && !of_family(v4, Family::V6));
        assert!(!of_family(mapped, Family::V6));
        assert!(of_family("::1".parse().unwrap(), Family::V6));
        assert!(!unicast("224.0.0.1".parse().unwrap()));
        assert!(!unicast("255.255.255.255".parse().unwrap()));
        assert!(!remote("0.0.0.0:80".parse().unwrap()));
        assert!(!remote("127.0.0.1:0".parse().unwrap()));
        assert!(remote("127.0.0.1:80".parse().unwrap()));
    }

    #[test]
    fn the_implementation_is_chosen_or_refused() {
        // SAFETY: this test is the only one in the crate that sets the variable.
        unsafe { std::env::set_var("SCHEDULER_SOCKETS", "wasmtime") };
        assert_eq!(SocketsImpl::for_run(), Ok(SocketsImpl::Wasmtime));
        unsafe { std::env::set_var("SCHEDULER_SOCKETS", "") };
        assert_eq!(SocketsImpl::for_run(), Ok(SocketsImpl::Own));
        unsafe { std::env::set_var("SCHEDULER_SOCKETS", "Own") };
        assert!(
            SocketsImpl::for_run()
                .unwrap_err()
                .contains("SCHEDULER_SOCKETS")
        );
        unsafe { std::env::remove_var("SCHEDULER_SOCKETS") };
        assert_eq!(SocketsImpl::for_run(), Ok(SocketsImpl::Own));
    }
}
