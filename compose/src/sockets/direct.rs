//! `output-stream.write` on a connected socket straight from the guest's memory: one copy
//! fewer a write. wasmtime-wasi's `write` lifts the bytes into a `Vec` and hands that to the
//! stream; here the list is read where it lies and sent to the kernel in the call, and only
//! what the socket will not take yet is copied (for the task that writes it as room comes).
//! Every other output stream (stdout, `wasi:tls`'s) takes wasmtime-wasi's path, unchanged.

use bytes::Bytes;
use wasmtime::StoreContextMut;
use wasmtime::component::{Linker, Resource, WasmList};
use wasmtime_wasi::p2::bindings::io::streams::{self, Host as _, HostOutputStream as _};
use wasmtime_wasi::p2::{DynOutputStream, StreamError};

use super::SocketsHostView;
use super::streams::{TcpOutput, send_or_keep};

/// The own TCP's connected streams of an instance, by resource: for writes from the guest's
/// memory (here) and reads into it (`crate::direct_read`).
#[derive(Default)]
pub struct OwnStreams {
    pub(crate) writers: crate::registry::Registry<TcpOutput>,
    pub(crate) readers: crate::registry::Registry<super::streams::TcpInput>,
}

/// Put the direct `write` in place of wasmtime-wasi's (shadowing it) in `linker`.
pub fn add_to_linker<T: SocketsHostView + 'static>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
    linker
        .instance("wasi:io/streams@0.2.12")?
        .func_wrap("[method]output-stream.write", write::<T>)
}

type WriteResult = wasmtime::Result<(Result<(), streams::StreamError>,)>;

fn write<T: SocketsHostView>(
    mut store: StoreContextMut<'_, T>,
    (stream, bytes): (Resource<DynOutputStream>, WasmList<u8>),
) -> WriteResult {
    let begun = {
        let view = store.data_mut().sockets_view();
        view.streams
            .writers
            .find(view.table, &stream)
            .map(|out| out.begin_direct(bytes.len()))
    };
    let r = match begun {
        None => {
            // Not the own TCP's: wasmtime-wasi's write, on a copy as it takes one.
            let copy = bytes.as_le_slice(&store).to_vec();
            store.data_mut().sockets_view().table.write(stream, copy)
        }
        Some(Err(e)) => Err(e),
        Some(Ok(now)) => {
            // Only what is left (all of it behind a write under way) is copied.
            let slice = bytes.as_le_slice(&store);
            let (failed, rest) = send_or_keep(now.as_deref(), slice, |from| {
                Bytes::copy_from_slice(&slice[from..])
            });
            let view = store.data_mut().sockets_view();
            match view.streams.writers.find(view.table, &stream) {
                Some(out) => out.end_direct(failed, rest),
                None => Err(StreamError::trap("the stream went during its write")),
            }
        }
    };
    match r {
        Ok(()) => Ok((Ok(()),)),
        Err(e) => {
            let table = store.data_mut().sockets_view().table;
            Ok((Err(table.convert_stream_error(e)?),))
        }
    }
}
