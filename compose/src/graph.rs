//! The composition, with `wac-graph`: socket and ip-pool plugged into http-actions; the
//! result exports the executor, and the very ip-pool and socket instances the actions use.
//! Shared by the build script (which writes the artifact) and the `compose` binary.

use wac_graph::types::Package;
use wac_graph::{CompositionGraph, EncodeOptions, NodeId};

pub const SOCKET: &str = "scheduler:core-libs/socket@0.1.0";
pub const IP_POOL: &str = "scheduler:core-libs/ip-pool@0.1.0";
pub const EXECUTOR: &str = "scheduler:executor/executor@0.1.0";
pub const WEBSOCKET: &str = "scheduler:executor/websocket@0.1.0";
pub const WASI_TLS: &str = "wasi:tls/types@0.2.0-draft";
pub const TLS_ALPN: &str = "scheduler:tls-alpn/alpn@0.1.0";

fn err(what: &str) -> impl Fn(String) -> String + '_ {
    move |e| format!("{what}: {e}")
}

/// Alias the export `name` of instance `from` and pass it to instance `into` under the same
/// name; the alias node, for exporting it too. `what` names it in errors.
fn plug(
    graph: &mut CompositionGraph,
    from: NodeId,
    into: NodeId,
    name: &str,
    what: &str,
) -> Result<NodeId, String> {
    let node = graph
        .alias_instance_export(from, name)
        .map_err(|e| format!("{what} export: {e}"))?;
    graph
        .set_instantiation_argument(into, name, node)
        .map_err(|e| format!("plug {what}: {e}"))?;
    Ok(node)
}

/// `socket` is `None` for an actions component that does not import it (the benchmark's floor,
/// which calls `wasi:sockets` itself).
pub fn compose_executor(
    socket: Option<&[u8]>,
    ip_pool: &[u8],
    http_actions: &[u8],
) -> Result<Vec<u8>, String> {
    compose(socket, ip_pool, http_actions, None)
}

/// The portable artifact: the same, with `wasi:tls` satisfied inside by `tls` (a component
/// that refuses every handshake), for hosts without `wasi:tls`.
pub fn compose_portable(
    socket: &[u8],
    ip_pool: &[u8],
    http_actions: &[u8],
    tls: &[u8],
) -> Result<Vec<u8>, String> {
    compose(Some(socket), ip_pool, http_actions, Some(tls))
}

fn compose(
    socket: Option<&[u8]>,
    ip_pool: &[u8],
    http_actions: &[u8],
    tls: Option<&[u8]>,
) -> Result<Vec<u8>, String> {
    let mut graph = CompositionGraph::new();
    let socket = socket
        .map(|s| register(&mut graph, "scheduler:socket", s))
        .transpose()?;
    let tls = tls
        .map(|t| register(&mut graph, "scheduler:tls-unsupported", t))
        .transpose()?;
    let ip_pool = register(&mut graph, "scheduler:ip-pool", ip_pool)?;
    let actions = register(&mut graph, "scheduler:http-actions", http_actions)?;

    let socket_i = socket.map(|s| graph.instantiate(s));
    let pool_i = graph.instantiate(ip_pool);
    let actions_i = graph.instantiate(actions);

    if let (Some(tls), Some(socket_i)) = (tls, socket_i) {
        let tls_i = graph.instantiate(tls);
        plug(&mut graph, tls_i, socket_i, WASI_TLS, "wasi:tls")?;
        plug(&mut graph, tls_i, socket_i, TLS_ALPN, "ALPN")?;
    }
    let socket = socket_i
        .map(|socket_i| plug(&mut graph, socket_i, actions_i, SOCKET, "socket"))
        .transpose()?;
    let pool = plug(&mut graph, pool_i, actions_i, IP_POOL, "ip-pool")?;
    let exec = graph
        .alias_instance_export(actions_i, EXECUTOR)
        .map_err(|e| err("executor export")(e.to_string()))?;
    // ip-pool first: the executor's types (pool-error) refer to it.
    graph
        .export(pool, IP_POOL)
        .map_err(|e| err("export ip-pool")(e.to_string()))?;
    graph
        .export(exec, EXECUTOR)
        .map_err(|e| err("export executor")(e.to_string()))?;
    // WebSocket sessions, when the actions component has them (after the executor: its
    // types refer to the executor's).
    if let Ok(ws) = graph.alias_instance_export(actions_i, WEBSOCKET) {
        graph
            .export(ws, WEBSOCKET)
            .map_err(|e| err("export websocket")(e.to_string()))?;
    }
    // The very socket instance the actions use: the host sends UDP actions through it.
    if let Some(socket) = socket {
        graph
            .export(socket, SOCKET)
            .map_err(|e| err("export socket")(e.to_string()))?;
    }
    encode(&graph)
}

/// Register a component (its custom sections stripped) under `name`.
fn register(
    graph: &mut CompositionGraph,
    name: &str,
    bytes: &[u8],
) -> Result<wac_graph::PackageId, String> {
    let bytes = strip_custom_sections(bytes).map_err(|e| format!("{name}: {e}"))?;
    let package = Package::from_bytes(name, None, bytes, graph.types_mut())
        .map_err(|e| format!("{name}: {e:#}"))?;
    graph
        .register_package(package)
        .map_err(|e| format!("{name}: {e}"))
}

/// The composition's bytes; an error names each cause in its chain.
fn encode(graph: &CompositionGraph) -> Result<Vec<u8>, String> {
    graph.encode(EncodeOptions::default()).map_err(|e| {
        let mut msg = format!("encode: {e}");
        let mut source = std::error::Error::source(&e);
        while let Some(s) = source {
            msg.push_str(&format!(": {s}"));
            source = s.source();
        }
        msg
    })
}

pub const HTTP_SERVER: &str = "scheduler:server/http-server@0.1.0";

/// The server artifact: the http-server component with its own socket component inside;
/// exports the server, imports only WASI.
pub fn compose_server(socket: &[u8], http_server: &[u8]) -> Result<Vec<u8>, String> {
    let mut graph = CompositionGraph::new();
    let socket = register(&mut graph, "scheduler:socket", socket)?;
    let server = register(&mut graph, "scheduler:http-server", http_server)?;
    let socket_i = graph.instantiate(socket);
    let server_i = graph.instantiate(server);
    plug(&mut graph, socket_i, server_i, SOCKET, "socket")?;
    let exported = graph
        .alias_instance_export(server_i, HTTP_SERVER)
        .map_err(|e| err("http-server export")(e.to_string()))?;
    graph
        .export(exported, HTTP_SERVER)
        .map_err(|e| err("export http-server")(e.to_string()))?;
    encode(&graph)
}

/// A component without its top-level custom sections (`component-name`, `producers`): names
/// for debugging, a tenth of the artifact, and nothing the runtime needs. Sections are walked
/// by their headers only (id, LEB128 size); everything else is copied byte for byte.
pub fn strip_custom_sections(component: &[u8]) -> Result<Vec<u8>, String> {
    const HEADER: usize = 8;
    if component.len() < HEADER || &component[..4] != b"\0asm" {
        return Err("not a WebAssembly binary".into());
    }
    let mut out = component[..HEADER].to_vec();
    let mut at = HEADER;
    while at < component.len() {
        let id = component[at];
        let (size, leb) = read_leb_u32(&component[at + 1..]).ok_or("bad section size")?;
        let end = (at + 1 + leb)
            .checked_add(size as usize)
            .filter(|&e| e <= component.len())
            .ok_or("section past the end")?;
        if id != 0 {
            out.extend_from_slice(&component[at..end]);
        }
        at = end;
    }
    Ok(out)
}

/// An unsigned LEB128 u32 and the bytes it took.
fn read_leb_u32(b: &[u8]) -> Option<(u32, usize)> {
    let mut v: u32 = 0;
    for (i, &byte) in b.iter().take(5).enumerate() {
        v |= u32::from(byte & 0x7f).checked_shl(7 * i as u32)?;
        if byte & 0x80 == 0 {
            return Some((v, i + 1));
        }
    }
    None
}
