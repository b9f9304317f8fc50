//! `input-stream.read` straight into the guest's memory: one copy fewer a read. wasmtime-wasi's
//! `read` takes the stream's bytes as a `Vec` and copies that into the list it lowers; here the
//! list is allocated in the guest while the answer is lowered, and the bytes are copied into
//! it from where they are: rustls's plaintext buffer for a TLS stream once it holds plaintext,
//! the socket itself for the own TCP while it receives in bulk (`FIONREAD` sizes the list;
//! short answers are read into a buffer of the thread's, which needs no call more and no
//! allocation). Every other read (stdin, files, wasmtime-wasi's TCP) takes wasmtime-wasi's
//! path.

use std::cell::RefCell;
use std::mem::MaybeUninit;
use std::sync::{Arc, Mutex};

use tokio::net::TcpStream;
use wasmtime::component::__internal::{
    CanonicalAbiInfo, InstanceType, InterfaceType, LowerContext,
};
use wasmtime::component::{ComponentType, Linker, Lower, Resource};
use wasmtime::{StoreContextMut, ValRaw, format_err};
use wasmtime_wasi::p2::bindings::io::streams::{self, Host as _, HostInputStream as _};
use wasmtime_wasi::p2::{DynInputStream, StreamResult};

use crate::registry::Registry;
use crate::sockets::SocketsHostView;
use crate::sockets::streams::{CHUNK, TcpInput, recv_into};
use crate::tls_host::{Fill, Shared, TlsHostView, TlsInput, lock, read_buffered, ready_plaintext};

/// An instance's TLS input streams, by resource.
#[derive(Default)]
pub(crate) struct TlsReaders(Mutex<Registry<TlsInput>>);

impl TlsReaders {
    pub(crate) fn lock(&self) -> std::sync::MutexGuard<'_, Registry<TlsInput>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Put the direct `read` in place of wasmtime-wasi's (shadowing it) in `linker`.
pub fn add_to_linker<T: TlsHostView + SocketsHostView + 'static>(
    linker: &mut Linker<T>,
) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    let r = linker
        .instance("wasi:io/streams@0.2.12")
        .and_then(|mut i| i.func_wrap("[method]input-stream.read", read::<T>));
    linker.allow_shadowing(false);
    r
}

thread_local! {
    /// The own TCP's short reads, on their way into the guest's list (the buffer, and the
    /// number of the last read into it).
    static SCRATCH: RefCell<(Box<[u8]>, u64)> = RefCell::new((vec![0; CHUNK].into(), 0));
}

/// A read's bytes, as the guest gets them.
enum Answer {
    /// Read already (wasmtime-wasi's path).
    Copied(Vec<u8>),
    /// The `n` bytes read into this thread's [`SCRATCH`], by its read numbered `read`.
    Scratch { n: usize, read: u64 },
    /// Up to `most` bytes of the session's plaintext (at least one is ready).
    Plaintext { session: Shared, most: usize },
    /// The `n` bytes waiting in the socket.
    Socket { stream: Arc<TcpStream>, n: usize },
}

type ReadResult = wasmtime::Result<(Result<Answer, streams::StreamError>,)>;

fn read<T: TlsHostView + SocketsHostView>(
    mut store: StoreContextMut<'_, T>,
    (stream, len): (Resource<DynInputStream>, u64),
) -> ReadResult {
    let size = usize::try_from(len).unwrap_or(usize::MAX);
    let view = store.data_mut().sockets_view();
    // `Some` for the own TCP's streams (direct or not): they are never TLS's.
    let tcp =
        view.streams
            .readers
            .find(view.table, &stream)
            .map(|input| match input.waiting(size) {
                Some((stream, n)) => Ok(Answer::Socket { stream, n }),
                None => read_scratch(input, size),
            });
    let view = store.data_mut().tls_view();
    let direct = match tcp {
        Some(answer) => Some(answer),
        None => match view.tls.readers.lock().find(view.table, &stream) {
            Some(input) if size > 0 => Some(read_tls(input, size)),
            _ => None,
        },
    };
    let answer = direct.unwrap_or_else(|| view.table.read(stream, len).map(Answer::Copied));
    match answer {
        Ok(a) => Ok((Ok(a),)),
        Err(e) => Ok((Err(view.table.convert_stream_error(e)?),)),
    }
}

/// What the own TCP's `input` has now, up to `size` bytes, read into [`SCRATCH`].
fn read_scratch(input: &mut TcpInput, size: usize) -> StreamResult<Answer> {
    SCRATCH.with_borrow_mut(|(buf, last)| {
        let n = input.read_into(&mut buf[..size.min(CHUNK)])?;
        *last += 1;
        Ok(Answer::Scratch { n, read: *last })
    })
}

/// A read of up to `size` (> 0) bytes of `input`: the plaintext to copy into the guest's
/// list when some is ready, or what the stream answers.
fn read_tls(input: &mut TlsInput, size: usize) -> StreamResult<Answer> {
    let session = input.session.clone();
    let mut s = lock(&session);
    match ready_plaintext(&mut input.tcp, &mut s) {
        // Plaintext never outgrows the ciphertext it comes from.
        Ok(ready) => Ok(Answer::Plaintext {
            most: size.min(ready + s.ciphertext_buffered()),
            session: session.clone(),
        }),
        Err(answer) => answer.map(|b| Answer::Copied(b.into())),
    }
}

impl Answer {
    /// Allocate the list in the guest and fill it: where it is and how long.
    fn store<U>(&self, cx: &mut LowerContext<'_, U>) -> wasmtime::Result<(usize, usize)> {
        match self {
            Answer::Copied(bytes) => {
                let ptr = cx.realloc(0, 0, 1, bytes.len())?;
                guest_slice(cx, ptr, bytes.len())?.copy_from_slice(bytes);
                Ok((ptr, bytes.len()))
            }
            Answer::Scratch { n, read } => {
                let ptr = cx.realloc(0, 0, 1, *n)?;
                let dst = guest_slice(cx, ptr, *n)?;
                // Lowered in the call that read them: another read in between (none can be
                // made) would have taken the buffer, and is refused rather than lowered.
                SCRATCH.with_borrow(|(buf, last)| {
                    if last != read {
                        return Err(format_err!(
                            "a read's bytes were taken before they were given"
                        ));
                    }
                    dst.copy_from_slice(&buf[..*n]);
                    Ok(())
                })?;
                Ok((ptr, *n))
            }
            Answer::Plaintext { session, most } => fill_list(cx, *most, |dst| {
                read_buffered(&mut lock(session), &mut Fill { dst, at: 0 })
            }),
            Answer::Socket { stream, n } => fill_list(cx, *n, |dst| recv_into(stream, dst)),
        }
    }
}

/// A list of up to `most` bytes allocated in the guest and filled by `fill` (which returns
/// how many it wrote): where it is and how long, shrunk to what came.
fn fill_list<U>(
    cx: &mut LowerContext<'_, U>,
    most: usize,
    fill: impl FnOnce(&mut [u8]) -> usize,
) -> wasmtime::Result<(usize, usize)> {
    let ptr = cx.realloc(0, 0, 1, most)?;
    match fill(guest_slice(cx, ptr, most)?) {
        n if n == most => Ok((ptr, n)),
        n if n > 0 => Ok((cx.realloc(ptr, most, 1, n)?, n)),
        // Nothing after all (what was waiting is always there to read; a socket failing in
        // between is the only way): an empty answer, as "nothing yet", and the next read
        // says what happened. The guest never frees an empty list, so its block stays
        // allocated, rather than a realloc to no size (which allocators may not take).
        _ => Ok((ptr, 0)),
    }
}

/// `len` bytes of the guest's memory from `ptr` (the guest's realloc gave them).
fn guest_slice<'a, U>(
    cx: &'a mut LowerContext<'_, U>,
    ptr: usize,
    len: usize,
) -> wasmtime::Result<&'a mut [u8]> {
    cx.as_slice_mut()
        .get_mut(ptr..)
        .and_then(|m| m.get_mut(..len))
        .ok_or_else(|| format_err!("realloc return: beyond end of memory"))
}

// SAFETY: lowered as a `list<u8>` (a pointer and a length), as `[u8]` is, and type-checked as
// one.
unsafe impl ComponentType for Answer {
    type Lower = [ValRaw; 2];
    const ABI: CanonicalAbiInfo = CanonicalAbiInfo::POINTER_PAIR;

    fn typecheck(ty: &InterfaceType, types: &InstanceType<'_>) -> wasmtime::Result<()> {
        <[u8] as ComponentType>::typecheck(ty, types)
    }
}

// SAFETY: writes a pointer and a length to the guest's list, as `[u8]`'s lowering does.
unsafe impl Lower for Answer {
    fn linear_lower_to_flat<U>(
        &self,
        cx: &mut LowerContext<'_, U>,
        _ty: InterfaceType,
        dst: &mut MaybeUninit<[ValRaw; 2]>,
    ) -> wasmtime::Result<()> {
        let (ptr, len) = self.store(cx)?;
        dst.write([ValRaw::i64(ptr as i64), ValRaw::i64(len as i64)]);
        Ok(())
    }

    fn linear_lower_to_memory<U>(
        &self,
        cx: &mut LowerContext<'_, U>,
        _ty: InterfaceType,
        offset: usize,
    ) -> wasmtime::Result<()> {
        let (ptr, len) = self.store(cx)?;
        *cx.get::<4>(offset) = u32::try_from(ptr)?.to_le_bytes();
        *cx.get::<4>(offset + 4) = u32::try_from(len)?.to_le_bytes();
        Ok(())
    }
}
