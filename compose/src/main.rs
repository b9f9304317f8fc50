//! `compose [--portable | --server] [OUT]`: write `scheduler-executor.wasm` (composed with
//! wac-graph from the components this crate's build script built) to OUT, default
//! `./scheduler-executor.wasm`; with `--portable`, the build for hosts without `wasi:tls`;
//! with `--server`, `scheduler-server.wasm` (the http-server component and its socket).

fn main() {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let portable = args.iter().any(|a| a == "--portable");
    let server = args.iter().any(|a| a == "--server");
    args.retain(|a| a != "--portable" && a != "--server");
    let out = args.first().cloned().unwrap_or_else(|| {
        match (portable, server) {
            (_, true) => "scheduler-server.wasm",
            (true, _) => "scheduler-executor-portable.wasm",
            _ => "scheduler-executor.wasm",
        }
        .to_string()
    });
    if out == "-h" || out == "--help" {
        println!(
            "usage: compose [--portable | --server] [OUT]   (default ./scheduler-executor.wasm)"
        );
        return;
    }
    let read = |p: &str| std::fs::read(p).unwrap_or_else(|e| fail(&format!("reading {p}: {e}")));
    if server {
        let bytes = compose::compose_server(
            &read(compose::SOCKET_COMPONENT),
            &read(compose::HTTP_SERVER_COMPONENT),
        )
        .unwrap_or_else(|e| fail(&e));
        std::fs::write(&out, &bytes).unwrap_or_else(|e| fail(&format!("writing {out}: {e}")));
        println!("wrote {out} ({} bytes)", bytes.len());
        return;
    }
    let (socket, pool, actions) = (
        read(compose::SOCKET_COMPONENT),
        read(compose::IP_POOL_COMPONENT),
        read(compose::HTTP_ACTIONS_COMPONENT),
    );
    let bytes = if portable {
        compose::compose_portable(
            &socket,
            &pool,
            &actions,
            &read(compose::TLS_UNSUPPORTED_COMPONENT),
        )
    } else {
        compose::compose_executor(Some(&socket), &pool, &actions)
    }
    .unwrap_or_else(|e| fail(&e));
    std::fs::write(&out, &bytes).unwrap_or_else(|e| fail(&format!("writing {out}: {e}")));
    println!("wrote {out} ({} bytes)", bytes.len());
}

fn fail(msg: &str) -> ! {
    eprintln!("compose: {msg}");
    std::process::exit(1);
}
