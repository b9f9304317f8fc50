//! `wasi:sockets/ip-name-lookup` under the user's policy: a name the policy does not allow is
//! refused (`access-denied`) before any query, so a redirect to a name the scenario never
//! named (and whatever a target encodes in it) never leaves the machine. Allowed names and IP
//! literals go to wasmtime-wasi's resolver. What a lookup of a name finds is allowed at the
//! ports the actions' URLs gave that name (`Policy::allow_name_at`): the addresses the client
//! connects to are the ones its own lookup found, whatever another lookup would answer.

use wasmtime::component::{HasData, Linker, Resource};
use wasmtime_wasi::p2::bindings::sockets::ip_name_lookup::{
    self, Host, HostResolveAddressStream, ResolveAddressStream,
};
use wasmtime_wasi::p2::bindings::sockets::network::{self, Error, ErrorCode, IpAddress, Network};
use wasmtime_wasi::p2::{DynPollable, SocketError};
use wasmtime_wasi::sockets::WasiSocketsCtxView;

use crate::runtime::{Policy, UserCtx};

/// The resolver a user's instance sees.
pub struct Lookup<'a> {
    inner: WasiSocketsCtxView<'a>,
    policy: &'a Policy,
}

struct HasLookup;

impl HasData for HasLookup {
    type Data<'a> = Lookup<'a>;
}

/// Put the policed resolver in place of wasmtime-wasi's in a linker that has it.
pub fn add_to_linker(linker: &mut Linker<UserCtx>) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    let r = ip_name_lookup::add_to_linker::<UserCtx, HasLookup>(linker, |ctx: &mut UserCtx| {
        let (sockets, policy) = ctx.sockets_and_policy();
        Lookup {
            inner: sockets,
            policy,
        }
    });
    linker.allow_shadowing(false);
    r
}

impl Host for Lookup<'_> {
    fn resolve_addresses(
        &mut self,
        network: Resource<Network>,
        name: String,
    ) -> Result<Resource<ResolveAddressStream>, SocketError> {
        if !self.policy.may_resolve(&name) {
            return Err(ErrorCode::AccessDenied.into());
        }
        let stream = self.inner.resolve_addresses(network, name.clone())?;
        self.policy.looking_up(stream.rep(), &name);
        Ok(stream)
    }
}

// The interface's error conversions, as wasmtime-wasi's.
impl network::Host for Lookup<'_> {
    fn convert_error_code(&mut self, error: SocketError) -> wasmtime::Result<ErrorCode> {
        self.inner.convert_error_code(error)
    }

    fn network_error_code(&mut self, err: Resource<Error>) -> wasmtime::Result<Option<ErrorCode>> {
        self.inner.network_error_code(err)
    }
}

impl network::HostNetwork for Lookup<'_> {
    fn drop(&mut self, rep: Resource<Network>) -> wasmtime::Result<()> {
        network::HostNetwork::drop(&mut self.inner, rep)
    }
}

impl HostResolveAddressStream for Lookup<'_> {
    fn resolve_next_address(
        &mut self,
        resource: Resource<ResolveAddressStream>,
    ) -> Result<Option<IpAddress>, SocketError> {
        let id = resource.rep();
        let next = self.inner.resolve_next_address(resource)?;
        if let Some(ip) = next {
            self.policy.found(id, std_ip(ip));
        }
        Ok(next)
    }

    fn subscribe(
        &mut self,
        resource: Resource<ResolveAddressStream>,
    ) -> wasmtime::Result<Resource<DynPollable>> {
        HostResolveAddressStream::subscribe(&mut self.inner, resource)
    }

    fn drop(&mut self, resource: Resource<ResolveAddressStream>) -> wasmtime::Result<()> {
        self.policy.lookup_done(resource.rep());
        HostResolveAddressStream::drop(&mut self.inner, resource)
    }
}

/// The found address as the standard library's.
fn std_ip(ip: IpAddress) -> std::net::IpAddr {
    match ip {
        IpAddress::Ipv4((a, b, c, d)) => std::net::Ipv4Addr::new(a, b, c, d).into(),
        IpAddress::Ipv6((a, b, c, d, e, f, g, h)) => {
            std::net::Ipv6Addr::new(a, b, c, d, e, f, g, h).into()
        }
    }
}

/// Whether a name is an IP literal (nothing to look up), as the resolver reads one.
pub fn is_literal(name: &str) -> bool {
    name.trim_matches(['[', ']'])
        .parse::<std::net::IpAddr>()
        .is_ok()
}

/// Names compare as DNS does: without case and without a trailing dot.
pub fn normalize(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}
