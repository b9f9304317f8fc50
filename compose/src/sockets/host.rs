//! The `wasi:sockets/tcp` and `tcp-create-socket` functions, on [`TcpSocket`].

use rustix::net::Shutdown;
use wasmtime::component::Resource;
use wasmtime_wasi::p2::bindings::sockets::network::{
    self, ErrorCode, IpAddressFamily, IpSocketAddress, Network,
};
use wasmtime_wasi::p2::{DynInputStream, DynOutputStream, DynPollable, SocketError, SocketResult};

use super::bindings::wasi::sockets::{tcp, tcp_create_socket};
use super::tcp::{Operation, TcpSocket};
use super::{Family, SocketsView};

type Streams = (Resource<DynInputStream>, Resource<DynOutputStream>);

impl SocketsView<'_> {
    /// The socket, once `network` (the capability the call needs) is checked to be one.
    fn with_network(
        &mut self,
        this: &Resource<TcpSocket>,
        network: &Resource<Network>,
    ) -> SocketResult<&mut TcpSocket> {
        self.table.get(network)?;
        let socket = self.table.get_mut(this)?;
        if socket.operation.is_some() {
            return Err(ErrorCode::ConcurrencyConflict.into());
        }
        Ok(socket)
    }

    /// End `op` (`not-in-progress` if it is not the one begun).
    fn finish(&mut self, this: &Resource<TcpSocket>, op: Operation) -> SocketResult<()> {
        let socket = self.table.get_mut(this)?;
        if socket.operation != Some(op) {
            return Err(ErrorCode::NotInProgress.into());
        }
        socket.operation = None;
        Ok(())
    }

    /// Put a connection's streams in the table as children of its socket.
    fn push_streams(
        &mut self,
        parent: &Resource<TcpSocket>,
        (input, output): (super::streams::TcpInput, super::streams::TcpOutput),
    ) -> SocketResult<Streams> {
        let (alive_in, alive_out) = (input.alive.clone(), output.alive.clone());
        let (input, output) = (Box::new(input), Box::new(output));
        let at_in: *const super::streams::TcpInput = &*input;
        let at_out: *const super::streams::TcpOutput = &*output;
        let input = self.table.push_child(input as DynInputStream, parent)?;
        let output = self.table.push_child(output as DynOutputStream, parent)?;
        self.streams.readers.register(input.rep(), at_in, &alive_in);
        self.streams
            .writers
            .register(output.rep(), at_out, &alive_out);
        Ok((input, output))
    }
}

impl tcp_create_socket::Host for SocketsView<'_> {
    fn create_tcp_socket(&mut self, family: IpAddressFamily) -> SocketResult<Resource<TcpSocket>> {
        let family = match family {
            IpAddressFamily::Ipv4 => Family::V4,
            IpAddressFamily::Ipv6 => Family::V6,
        };
        Ok(self.table.push(TcpSocket::new(family)?)?)
    }
}

impl tcp::Host for SocketsView<'_> {}

impl tcp::HostTcpSocket for SocketsView<'_> {
    fn start_bind(
        &mut self,
        this: Resource<TcpSocket>,
        network: Resource<Network>,
        local_address: IpSocketAddress,
    ) -> SocketResult<()> {
        let check = self.check;
        let socket = self.with_network(&this, &network)?;
        socket.bind(local_address.into(), check)?;
        socket.operation = Some(Operation::Bind);
        Ok(())
    }

    fn finish_bind(&mut self, this: Resource<TcpSocket>) -> SocketResult<()> {
        self.finish(&this, Operation::Bind)
    }

    fn start_connect(
        &mut self,
        this: Resource<TcpSocket>,
        network: Resource<Network>,
        remote_address: IpSocketAddress,
    ) -> SocketResult<()> {
        let check = self.check;
        let socket = self.with_network(&this, &network)?;
        socket.start_connect(remote_address.into(), check)?;
        socket.operation = Some(Operation::Connect);
        Ok(())
    }

    fn finish_connect(&mut self, this: Resource<TcpSocket>) -> SocketResult<Streams> {
        let socket = self.table.get_mut(&this)?;
        if socket.operation != Some(Operation::Connect) {
            return Err(ErrorCode::NotInProgress.into());
        }
        let streams = socket.finish_connect()?;
        self.push_streams(&this, streams)
    }

    fn start_listen(&mut self, this: Resource<TcpSocket>) -> SocketResult<()> {
        let check = self.check;
        let socket = self.table.get_mut(&this)?;
        if socket.operation.is_some() {
            return Err(ErrorCode::ConcurrencyConflict.into());
        }
        socket.listen(check)?;
        socket.operation = Some(Operation::Listen);
        Ok(())
    }

    fn finish_listen(&mut self, this: Resource<TcpSocket>) -> SocketResult<()> {
        self.finish(&this, Operation::Listen)
    }

    fn accept(
        &mut self,
        this: Resource<TcpSocket>,
    ) -> SocketResult<(
        Resource<TcpSocket>,
        Resource<DynInputStream>,
        Resource<DynOutputStream>,
    )> {
        let check = self.check;
        let (socket, input, output) = self.table.get_mut(&this)?.accept(check)?;
        let socket = self.table.push(socket)?;
        let (input, output) = self.push_streams(&socket, (input, output))?;
        Ok((socket, input, output))
    }

    fn local_address(&mut self, this: Resource<TcpSocket>) -> SocketResult<IpSocketAddress> {
        Ok(self.table.get_mut(&this)?.local_address()?.into())
    }

    fn remote_address(&mut self, this: Resource<TcpSocket>) -> SocketResult<IpSocketAddress> {
        Ok(self.table.get(&this)?.remote_address()?.into())
    }

    fn is_listening(&mut self, this: Resource<TcpSocket>) -> wasmtime::Result<bool> {
        Ok(self.table.get(&this)?.is_listening())
    }

    fn address_family(&mut self, this: Resource<TcpSocket>) -> wasmtime::Result<IpAddressFamily> {
        Ok(match self.table.get(&this)?.family {
            Family::V4 => IpAddressFamily::Ipv4,
            Family::V6 => IpAddressFamily::Ipv6,
        })
    }

    fn set_listen_backlog_size(
        &mut self,
        this: Resource<TcpSocket>,
        value: u64,
    ) -> SocketResult<()> {
        self.table.get_mut(&this)?.set_backlog(value)
    }

    fn keep_alive_enabled(&mut self, this: Resource<TcpSocket>) -> SocketResult<bool> {
        self.table.get(&this)?.keep_alive_enabled()
    }

    fn set_keep_alive_enabled(
        &mut self,
        this: Resource<TcpSocket>,
        value: bool,
    ) -> SocketResult<()> {
        self.table.get(&this)?.set_keep_alive_enabled(value)
    }

    fn keep_alive_idle_time(&mut self, this: Resource<TcpSocket>) -> SocketResult<u64> {
        self.table.get(&this)?.keep_alive_idle_time()
    }

    fn set_keep_alive_idle_time(
        &mut self,
        this: Resource<TcpSocket>,
        value: u64,
    ) -> SocketResult<()> {
        self.table.get(&this)?.set_keep_alive_idle_time(value)
    }

    fn keep_alive_interval(&mut self, this: Resource<TcpSocket>) -> SocketResult<u64> {
        self.table.get(&this)?.keep_alive_interval()
    }

    fn set_keep_alive_interval(
        &mut self,
        this: Resource<TcpSocket>,
        value: u64,
    ) -> SocketResult<()> {
        self.table.get(&this)?.set_keep_alive_interval(value)
    }

    fn keep_alive_count(&mut self, this: Resource<TcpSocket>) -> SocketResult<u32> {
        self.table.get(&this)?.keep_alive_count()
    }

    fn set_keep_alive_count(&mut self, this: Resource<TcpSocket>, value: u32) -> SocketResult<()> {
        self.table.get(&this)?.set_keep_alive_count(value)
    }

    fn hop_limit(&mut self, this: Resource<TcpSocket>) -> SocketResult<u8> {
        self.table.get(&this)?.hop_limit()
    }

    fn set_hop_limit(&mut self, this: Resource<TcpSocket>, value: u8) -> SocketResult<()> {
        self.table.get(&this)?.set_hop_limit(value)
    }

    fn receive_buffer_size(&mut self, this: Resource<TcpSocket>) -> SocketResult<u64> {
        self.table.get(&this)?.receive_buffer_size()
    }

    fn set_receive_buffer_size(
        &mut self,
        this: Resource<TcpSocket>,
        value: u64,
    ) -> SocketResult<()> {
        self.table.get(&this)?.set_receive_buffer_size(value)
    }

    fn send_buffer_size(&mut self, this: Resource<TcpSocket>) -> SocketResult<u64> {
        self.table.get(&this)?.send_buffer_size()
    }

    fn set_send_buffer_size(&mut self, this: Resource<TcpSocket>, value: u64) -> SocketResult<()> {
        self.table.get(&this)?.set_send_buffer_size(value)
    }

    fn subscribe(&mut self, this: Resource<TcpSocket>) -> wasmtime::Result<Resource<DynPollable>> {
        wasmtime_wasi::p2::subscribe(self.table, this)
    }

    fn shutdown(&mut self, this: Resource<TcpSocket>, how: tcp::ShutdownType) -> SocketResult<()> {
        let how = match how {
            tcp::ShutdownType::Receive => Shutdown::Read,
            tcp::ShutdownType::Send => Shutdown::Write,
            tcp::ShutdownType::Both => Shutdown::Both,
        };
        self.table.get(&this)?.shutdown(how)
    }

    fn drop(&mut self, this: Resource<TcpSocket>) -> wasmtime::Result<()> {
        self.table.delete(this)?;
        Ok(())
    }
}

// The error conversions the interfaces' functions go through, as wasmtime-wasi's.
impl network::Host for SocketsView<'_> {
    fn convert_error_code(&mut self, error: SocketError) -> wasmtime::Result<ErrorCode> {
        error.downcast()
    }

    fn network_error_code(
        &mut self,
        err: Resource<network::Error>,
    ) -> wasmtime::Result<Option<ErrorCode>> {
        let err = self.table.get(&err)?;
        Ok(err.downcast_ref::<std::io::Error>().map(ErrorCode::from))
    }
}

impl network::HostNetwork for SocketsView<'_> {
    fn drop(&mut self, this: Resource<Network>) -> wasmtime::Result<()> {
        self.table.delete(this)?;
        Ok(())
    }
}
