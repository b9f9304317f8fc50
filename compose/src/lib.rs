//! Paths of the built components and of the composed `scheduler-executor.wasm` (all built by
//! this crate's build script), and the composition itself.

pub mod cache;
mod direct_read;
mod graph;
pub mod memory;
mod registry;
pub mod sockets;
pub mod tls;
mod tls_host;
mod tls_verify;

pub use graph::{
    EXECUTOR, HTTP_SERVER, IP_POOL, SOCKET, WASI_TLS, compose_executor, compose_portable,
    compose_server, strip_custom_sections,
};

/// The socket component (`scheduler:core-libs/socket`), size-tuned release build (`[profile.wasm]`).
pub const SOCKET_COMPONENT: &str = env!("SOCKET_COMPONENT_WASM");

/// The ip-pool component (`scheduler:core-libs/ip-pool`), size-tuned release build (`[profile.wasm]`).
pub const IP_POOL_COMPONENT: &str = env!("IP_POOL_COMPONENT_WASM");

/// The http-actions component (imports socket and ip-pool), size-tuned release build (`[profile.wasm]`).
pub const HTTP_ACTIONS_COMPONENT: &str = env!("HTTP_ACTIONS_COMPONENT_WASM");

/// The stand-in for `wasi:tls` that refuses every handshake (for the portable artifact).
pub const TLS_UNSUPPORTED_COMPONENT: &str = env!("TLS_UNSUPPORTED_COMPONENT_WASM");

/// The composed executor artifact: exports the executor and ip-pool, imports only WASI (with
/// `wasi:tls`).
pub const EXECUTOR_ARTIFACT: &str = env!("EXECUTOR_WASM");

/// The same for hosts without `wasi:tls` (jco on Node): `https://` is refused with
/// `tls(unsupported)`, everything else works.
pub const EXECUTOR_PORTABLE_ARTIFACT: &str = env!("EXECUTOR_PORTABLE_WASM");

/// The http-server component (imports socket), size-tuned release build.
pub const HTTP_SERVER_COMPONENT: &str = env!("HTTP_SERVER_COMPONENT_WASM");

/// The composed server artifact: exports `scheduler:server/http-server`, imports only WASI
/// (with `wasi:tls`, unused by a server).
pub const SERVER_ARTIFACT: &str = env!("SERVER_WASM");

/// The server artifact's bytes, built in.
pub static SERVER_BYTES: &[u8] = include_bytes!(env!("SERVER_WASM"));

/// The same artifact's bytes, built into whatever links this crate: a copied or installed
/// `scheduler` needs no build tree.
pub static EXECUTOR_BYTES: &[u8] = include_bytes!(env!("EXECUTOR_WASM"));

/// How long dropping an output stream waits for its last write. wasmtime-wasi's own drop
/// waits for it without end, so a socket whose peer stopped reading could never be closed or
/// dropped (the socket component's close has already waited the socket's write timeout for
/// its flush by then).
pub const STREAM_DROP_BOUND: std::time::Duration = std::time::Duration::from_secs(1);

const STREAMS: &str = "wasi:io/streams@0.2.12";

/// Drop the output stream `rep`: its last write gets `STREAM_DROP_BOUND`, then is cancelled.
async fn drop_output_stream(
    table: &mut wasmtime_wasi::ResourceTable,
    rep: u32,
) -> wasmtime::Result<()> {
    use wasmtime::component::Resource;
    use wasmtime_wasi::p2::DynOutputStream;
    let mut stream = table.delete(Resource::<DynOutputStream>::new_own(rep))?;
    let _ = tokio::time::timeout(STREAM_DROP_BOUND, stream.cancel()).await;
    Ok(())
}

/// Replace the destructor of `wasi:io/streams.output-stream` in a linker set up by
/// `wasmtime_wasi::p2::add_to_linker_async` with one whose wait for the stream's last write is
/// bounded by `STREAM_DROP_BOUND`; after it the write is cancelled (its task dropped).
pub fn bound_stream_drops<T: wasmtime_wasi::WasiView + Send + 'static>(
    linker: &mut wasmtime::component::Linker<T>,
) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    let r = linker.instance(STREAMS).and_then(|mut i| {
        i.resource_async(
            "output-stream",
            wasmtime::component::ResourceType::host::<wasmtime_wasi::p2::DynOutputStream>(),
            |mut store, rep| {
                Box::new(async move { drop_output_stream(store.data_mut().ctx().table, rep).await })
            },
        )
    });
    linker.allow_shadowing(false);
    r
}

/// The same for a linker set up by `wasmtime_wasi::p2::add_to_linker_sync`.
pub fn bound_stream_drops_sync<T: wasmtime_wasi::WasiView + Send + 'static>(
    linker: &mut wasmtime::component::Linker<T>,
) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    let r = linker.instance(STREAMS).and_then(|mut i| {
        i.resource(
            "output-stream",
            wasmtime::component::ResourceType::host::<wasmtime_wasi::p2::DynOutputStream>(),
            |mut store, rep| {
                wasmtime_wasi::runtime::in_tokio(drop_output_stream(
                    store.data_mut().ctx().table,
                    rep,
                ))
            },
        )
    });
    linker.allow_shadowing(false);
    r
}

/// Pooling-allocator limits for `slots` live instances of the artifact: per instance it holds
/// up to 48 core instances, 8 memories and 24 tables (three components, their adapters and
/// shims), with room to spare. The scheduler host and the benchmarks load it with these.
pub fn pooling_config(slots: u32) -> wasmtime::PoolingAllocationConfig {
    let mut pooling = wasmtime::PoolingAllocationConfig::default();
    pooling
        .total_component_instances(slots)
        .total_core_instances(slots * 24)
        .total_memories(slots * 4)
        .total_tables(slots * 12)
        .total_stacks(slots)
        .max_core_instances_per_component(48)
        .max_memories_per_component(8)
        .max_tables_per_component(24)
        .max_memory_size(512 << 20);
    pooling
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Top-level section ids, by walking the headers.
    fn section_ids(b: &[u8]) -> Vec<u8> {
        let stripped_again = strip_custom_sections(b).unwrap();
        assert_eq!(stripped_again.len(), b.len(), "nothing left to strip");
        let mut ids = Vec::new();
        let mut at = 8;
        while at < b.len() {
            let mut size = 0usize;
            let mut i = 0;
            while b[at + 1 + i] & 0x80 != 0 {
                size |= usize::from(b[at + 1 + i] & 0x7f) << (7 * i);
                i += 1;
            }
            size |= usize::from(b[at + 1 + i]) << (7 * i);
            ids.push(b[at]);
            at += 2 + i + size;
        }
        ids
    }

    #[test]
    fn stripping_drops_only_custom_sections() {
        let raw = std::fs::read(SOCKET_COMPONENT).unwrap();
        let stripped = strip_custom_sections(&raw).unwrap();
        assert!(stripped.len() < raw.len());
        let ids = section_ids(&stripped);
        assert!(!ids.contains(&0), "{ids:?}");
        // The artifact is composed from stripped components: no custom section at its top
        // level, and none at the top of the nested components (id 4) either.
        let artifact = std::fs::read(EXECUTOR_ARTIFACT).unwrap();
        assert!(!section_ids(&artifact).contains(&0));
        assert!(!artifact.windows(14).any(|w| w == b"component-name"));
        for bad in [
            &b""[..],
            b"\0asm",
            b"\0asm\x0d\0\x01\0\x01\xff\xff\xff\xff\xff",
        ] {
            assert!(strip_custom_sections(bad).is_err(), "{bad:?}");
        }
        let truncated = &stripped[..stripped.len() - 1];
        assert!(strip_custom_sections(truncated).is_err());
    }
}
