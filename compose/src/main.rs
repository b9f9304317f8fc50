//! `compose [OUT]`: write `scheduler-executor.wasm` (composed with wac-graph from the three
//! components this crate's build script built) to OUT, default `./scheduler-executor.wasm`.

fn main() {
    let out = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "scheduler-executor.wasm".to_string());
    if out == "-h" || out == "--help" {
        println!("usage: compose [OUT]   (default ./scheduler-executor.wasm)");
        return;
    }
    let read = |p: &str| std::fs::read(p).unwrap_or_else(|e| fail(&format!("reading {p}: {e}")));
    let bytes = compose::compose_executor(
        Some(&read(compose::SOCKET_COMPONENT)),
        &read(compose::IP_POOL_COMPONENT),
        &read(compose::HTTP_ACTIONS_COMPONENT),
    )
    .unwrap_or_else(|e| fail(&e));
    std::fs::write(&out, &bytes).unwrap_or_else(|e| fail(&format!("writing {out}: {e}")));
    println!("wrote {out} ({} bytes)", bytes.len());
}

fn fail(msg: &str) -> ! {
    eprintln!("compose: {msg}");
    std::process::exit(1);
}
