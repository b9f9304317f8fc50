# Conveniences over cargo; every recipe is a plain command you can run yourself.
set shell := ["bash", "-euo", "pipefail", "-c"]

wasm := "target/wasm-components/wasm32-wasip2/wasm"
out := "target/artifacts"

default:
    @just --list

# Build every component in release for wasm32-wasip2 and validate each with wasm-tools.
build-all:
    cargo build --profile wasm --target wasm32-wasip2 --target-dir target/wasm-components \
        -p socket-component -p ip-pool-component -p http-actions-component \
        -p tls-unsupported-component -p http-server-component
    for c in socket_component ip_pool_component http_actions_component tls_unsupported_component http_server_component; do \
        wasm-tools validate {{wasm}}/$c.wasm; \
        printf '%-28s %8d bytes  valid\n' "$c.wasm" "$(stat -c %s {{wasm}}/$c.wasm)"; \
    done

# Compose scheduler-executor.wasm with wac-graph (compose/src/graph.rs) and validate it.
compose: build-all
    mkdir -p {{out}}
    cargo run -q --bin compose -- {{out}}/scheduler-executor.wasm
    wasm-tools validate {{out}}/scheduler-executor.wasm
    cargo run -q --bin compose -- --portable {{out}}/scheduler-executor-portable.wasm
    wasm-tools validate {{out}}/scheduler-executor-portable.wasm
    cargo run -q --bin compose -- --server {{out}}/scheduler-server.wasm
    wasm-tools validate {{out}}/scheduler-server.wasm

# Show the artifact's imports and exports.
validate: compose
    wasm-tools component wit {{out}}/scheduler-executor.wasm | grep -E '^\s*(import|export)'
    @echo "-- scheduler-executor-portable.wasm (no wasi:tls):"
    wasm-tools component wit {{out}}/scheduler-executor-portable.wasm | grep -E '^\s*(import|export)'
    @echo "-- scheduler-server.wasm:"
    wasm-tools component wit {{out}}/scheduler-server.wasm | grep -E '^\s*(import|export)'

# The same composition with the wac CLI, from compose/scheduler-executor.wac. (A bare
# `wac plug` cannot express it: the result must also export the ip-pool instance, whose
# pool-error type the executor interface uses.)
plug: build-all
    mkdir -p {{out}}
    wac compose compose/scheduler-executor.wac \
        --dep scheduler:socket={{wasm}}/socket_component.wasm \
        --dep scheduler:ip-pool={{wasm}}/ip_pool_component.wasm \
        --dep scheduler:http-actions={{wasm}}/http_actions_component.wasm \
        -o {{out}}/scheduler-executor.wac.wasm
    wasm-tools validate {{out}}/scheduler-executor.wac.wasm
    wac compose compose/scheduler-server.wac \
        --dep scheduler:socket={{wasm}}/socket_component.wasm \
        --dep scheduler:http-server={{wasm}}/http_server_component.wasm \
        -o {{out}}/scheduler-server.wac.wasm
    wasm-tools validate {{out}}/scheduler-server.wac.wasm

# wac-graph and wac CLI compositions must have the same imports and exports.
check-wac: compose plug
    diff <(wasm-tools component wit {{out}}/scheduler-executor.wasm | grep -E '^\s*(import|export)') \
         <(wasm-tools component wit {{out}}/scheduler-executor.wac.wasm | grep -E '^\s*(import|export)')
    diff <(wasm-tools component wit {{out}}/scheduler-server.wasm | grep -E '^\s*(import|export)') \
         <(wasm-tools component wit {{out}}/scheduler-server.wac.wasm | grep -E '^\s*(import|export)')
    @echo "wac-graph and wac compose agree on imports and exports"

# The README's test command.
test:
    cargo test

# The main job: the bundled demo scenario.
demo *ARGS:
    cargo run --bin scheduler -- demo {{ARGS}}

# Benchmarks (ratios measured in one run; writes bench/RESULTS.md); `just bench --quick` is
# the tiny CI variant. Installs nginx and wrk (Debian) if missing, and oha (crates.io, its
# default rustls build, pinned: 1.15+ no longer builds without it; a few minutes) for full
# runs; everything on loopback.
bench *ARGS:
    if ! command -v nginx >/dev/null && [ ! -x /usr/sbin/nginx ]; then $( [ "$(id -u)" = 0 ] || echo sudo ) apt-get install -y -qq nginx-light; fi
    if ! command -v wrk >/dev/null; then $( [ "$(id -u)" = 0 ] || echo sudo ) apt-get install -y -qq wrk || true; fi
    if [[ " {{ARGS}} " != *" --quick "* ]] && ! command -v oha >/dev/null && [ ! -x "$HOME/.cargo/bin/oha" ]; then cargo install oha --locked --version 1.16.0; fi
    # --quick reuses the debug build of `cargo test`; a real run builds optimised.
    profile=bench; if [[ " {{ARGS}} " == *" --quick "* ]]; then profile=dev; else cargo build --profile host-release --bin scheduler; fi; \
        cargo bench --profile $profile --bench suite --bench ip_pool -- {{ARGS}}

# The patched wasmtime-environ's own tests of what the patch changes (vendor/README.md): the
# crate is not a workspace member, so `cargo test` does not run them.
vendor-test:
    cd vendor/wasmtime-environ && cargo test -q --lib --features component-model,compile \
        --target-dir ../../target/vendor-tests module_artifacts

# The Kubernetes manifests against the Kubernetes API schemas (offline: kubernetes-validate
# carries them; pip install kubernetes-validate).
k8s-validate:
    kubernetes-validate --strict -k 1.30.0 deploy/kubernetes/etcd/etcd.yaml \
        deploy/kubernetes/run/scenario.yaml deploy/kubernetes/run/run.yaml \
        deploy/kubernetes/run/job.yaml deploy/kubernetes/run/merge.yaml

fmt:
    cargo fmt --all

lint:
    cargo clippy --workspace --all-targets -- -D warnings
    cargo clippy --target wasm32-wasip2 --target-dir target/wasm-components -p socket-component -p ip-pool-component -p http-actions-component -p tls-unsupported-component -p http-server-component -p ureq-guest -p wasi-http-guest -p bare-guest -- -D warnings
    cargo clippy --target wasm32-wasip2 --target-dir target/wasm-components -p bare-guest --features via-socket -- -D warnings

# Fuzz every target for longer than CI does (proptest on the stable toolchain; CI runs the
# default 256 cases each in `cargo test`). CASES=N sets the count.
fuzz CASES="100000":
    PROPTEST_CASES={{CASES}} cargo test --release -p http-core --test fuzz
    PROPTEST_CASES={{CASES}} cargo test --release -p ip-pool --test fuzz
    PROPTEST_CASES={{CASES}} cargo test --release -p scheduler-host --bin scheduler fuzz

# Write the scenario format's JSON Schema (host/scenario.schema.json) from host/src/format/schema.rs.
schema:
    cargo run -q --bin scheduler -- schema > host/scenario.schema.json
