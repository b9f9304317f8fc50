//! Builds the WebAssembly components with a nested `cargo build --target wasm32-wasip2` into a
//! target dir of their own (sharing the outer one would deadlock on cargo's build lock), and
//! hands their paths to this crate as constants. This is how `cargo test` and `cargo run`
//! build everything on a fresh machine with nothing but cargo.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

#[path = "src/graph.rs"]
mod graph;

/// (package, artifact file stem, constant name)
const COMPONENTS: &[(&str, &str, &str)] = &[
    ("socket-component", "socket_component", "SOCKET_COMPONENT"),
    (
        "ip-pool-component",
        "ip_pool_component",
        "IP_POOL_COMPONENT",
    ),
    (
        "http-actions-component",
        "http_actions_component",
        "HTTP_ACTIONS_COMPONENT",
    ),
    (
        "tls-unsupported-component",
        "tls_unsupported_component",
        "TLS_UNSUPPORTED_COMPONENT",
    ),
    (
        "http-server-component",
        "http_server_component",
        "HTTP_SERVER_COMPONENT",
    ),
];

const TARGET: &str = "wasm32-wasip2";
/// The workspace profile for the components (`[profile.wasm]`: release, tuned for size).
const PROFILE: &str = "wasm";

fn main() {
    let manifest_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap());
    let root = manifest_dir.parent().unwrap().to_path_buf();
    let out_dir = PathBuf::from(env::var("OUT_DIR").unwrap());
    let target_dir = wasm_target_dir(&out_dir);
    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".into());

    ensure_target(&root);

    let mut cmd = Command::new(&cargo);
    cmd.current_dir(&root)
        .arg("build")
        .arg("--profile")
        .arg(PROFILE)
        .arg("--target")
        .arg(TARGET)
        .arg("--target-dir")
        .arg(&target_dir);
    for (package, _, _) in COMPONENTS {
        cmd.arg("-p").arg(package);
    }
    // The outer build's settings are for the host; the guests get their own.
    for var in [
        "CARGO_ENCODED_RUSTFLAGS",
        "RUSTFLAGS",
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_TARGET",
        "CARGO_BUILD_RUSTFLAGS",
        "CARGO_PROFILE_RELEASE_DEBUG",
        "RUSTC_WORKSPACE_WRAPPER",
    ] {
        cmd.env_remove(var);
    }
    let status = cmd
        .stdin(std::process::Stdio::null())
        .status()
        .expect("run nested cargo build for the components");
    assert!(
        status.success(),
        "building the wasm32-wasip2 components failed"
    );

    let release = target_dir.join(TARGET).join(PROFILE);
    for (_, stem, constant) in COMPONENTS {
        let wasm = release.join(format!("{stem}.wasm"));
        assert!(wasm.exists(), "missing {}", wasm.display());
        println!("cargo:rustc-env={constant}_WASM={}", wasm.display());
        rerun_for_deps(&release.join(format!("{stem}.d")));
    }
    let read =
        |stem: &str| std::fs::read(release.join(format!("{stem}.wasm"))).expect("read component");
    let executor = graph::compose_executor(
        Some(&read("socket_component")),
        &read("ip_pool_component"),
        &read("http_actions_component"),
    )
    .unwrap_or_else(|e| panic!("composing scheduler-executor.wasm: {e}"));
    let out = target_dir.join("scheduler-executor.wasm");
    std::fs::write(&out, executor).expect("write scheduler-executor.wasm");
    println!("cargo:rustc-env=EXECUTOR_WASM={}", out.display());
    let portable = graph::compose_portable(
        &read("socket_component"),
        &read("ip_pool_component"),
        &read("http_actions_component"),
        &read("tls_unsupported_component"),
    )
    .unwrap_or_else(|e| panic!("composing scheduler-executor-portable.wasm: {e}"));
    let out = target_dir.join("scheduler-executor-portable.wasm");
    std::fs::write(&out, portable).expect("write scheduler-executor-portable.wasm");
    println!("cargo:rustc-env=EXECUTOR_PORTABLE_WASM={}", out.display());
    let server = graph::compose_server(&read("socket_component"), &read("http_server_component"))
        .unwrap_or_else(|e| panic!("composing scheduler-server.wasm: {e}"));
    let out = target_dir.join("scheduler-server.wasm");
    std::fs::write(&out, server).expect("write scheduler-server.wasm");
    println!("cargo:rustc-env=SERVER_WASM={}", out.display());
    println!("cargo:rerun-if-changed={}", root.join("wit").display());
    // The lock file (dependency versions) and the workspace manifest (`[profile.wasm]`).
    for file in ["Cargo.lock", "Cargo.toml"] {
        println!("cargo:rerun-if-changed={}", root.join(file).display());
    }
}

/// The outer target dir (the ancestor of OUT_DIR where cargo put CACHEDIR.TAG), plus
/// `wasm-components`; debug and release host builds share it.
fn wasm_target_dir(out_dir: &Path) -> PathBuf {
    out_dir
        .ancestors()
        .find(|p| p.join("CACHEDIR.TAG").exists())
        .map(|t| t.join("wasm-components"))
        .unwrap_or_else(|| out_dir.join("wasm-components"))
}

/// rustup may be told not to install targets on its own; add the one we need if it is missing.
fn ensure_target(root: &Path) {
    let rustc = env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let libdir = Command::new(&rustc)
        .args(["--print", "target-libdir", "--target", TARGET])
        .current_dir(root)
        .output();
    if let Ok(out) = libdir {
        let dir = String::from_utf8_lossy(&out.stdout).trim().to_string();
        if out.status.success() && Path::new(&dir).exists() {
            return;
        }
    }
    let _ = Command::new("rustup")
        .args(["target", "add", TARGET])
        .current_dir(root)
        .status();
}

/// Rebuild when any source file the component depends on changes (from cargo's `.d` file).
fn rerun_for_deps(dep_file: &Path) {
    let Ok(text) = std::fs::read_to_string(dep_file) else {
        return;
    };
    let Some((_, deps)) = text.split_once(':') else {
        return;
    };
    let mut pending = String::new();
    for token in deps.split_whitespace() {
        // Paths with spaces are escaped as "\ " in .d files.
        if let Some(part) = token.strip_suffix('\\') {
            pending.push_str(part);
            pending.push(' ');
            continue;
        }
        pending.push_str(token);
        if !pending.contains("/.cargo/registry/") {
            println!("cargo:rerun-if-changed={pending}");
        }
        pending.clear();
    }
}
