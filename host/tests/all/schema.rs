//! The scenario format's JSON Schema (`scheduler schema`, host/scenario.schema.json) against the
//! bundled scenarios and a scenario that uses every field, checked with the jsonschema crate
//! (an implementation of JSON Schema 2020-12 nobody here wrote); and the schema and
//! `validate --strict` agree on what is an unknown field.

use std::path::PathBuf;
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_scheduler");

fn schema() -> jsonschema::Validator {
    let text =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/scenario.schema.json"))
            .unwrap();
    let printed = Command::new(BIN).arg("schema").output().unwrap();
    assert!(printed.status.success());
    assert_eq!(
        String::from_utf8(printed.stdout).unwrap(),
        text,
        "`scheduler schema` prints the checked-in copy"
    );
    jsonschema::validator_for(&serde_json::from_str(&text).unwrap()).unwrap()
}

/// Problems the schema finds in a YAML scenario (its JSON reading of it).
fn schema_problems(v: &jsonschema::Validator, yaml: &str) -> Vec<String> {
    let doc: serde_json::Value = serde_yaml::from_str(yaml).unwrap();
    v.iter_errors(&doc)
        .map(|e| format!("{}: {e}", e.instance_path))
        .collect()
}

fn validate(yaml: &str, strict: bool) -> (bool, String) {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = integration_tests::scratch::Scratch::new(&format!("schema-test-{n}"));
    let path = dir.join("s.yaml");
    std::fs::write(&path, yaml).unwrap();
    let mut args = vec!["validate".to_string(), path.display().to_string()];
    if strict {
        args.push("--strict".into());
    }
    let out = Command::new(BIN).args(&args).output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Every field of the format, once.
const EVERYTHING: &str = r#"
version: v1
name: everything
workbook:
  ip_pools:
    - { id: p1, name: "Pool one", ranges: ["127.0.40.0/24", "127.0.41.1-127.0.41.9"],
        allocation_strategy: round_robin, segment: 0 }
    - { id: p2, ranges: ["127.0.42.0/28"], allocation_strategy: random }
  resources:
    - id: base
      type: http_endpoint
      properties: { scheme: http, host: "127.0.0.1", port: 8080, url: "{{base.scheme}}://{{base.host}}:{{base.port}}" }
load:
  ramp_up:
    phases:
      - { at_second: 0, spawn_users: 2, tenant_id: t1, ip_pool_override: p2 }
      - { at_second: 0.5, spawn_users: 1 }
  user_lifetime: { mode: loop, iterations: 2, think_time: 10ms, duration: 1m30s, max_concurrency: 1 }
  user_resources:
    ip_binding: { enabled: true, pool_id: p1, strategy: per_task, release_on: task_end,
                  wait_on_exhaustion: true, wait_timeout: 1s }
    capacity_management: { wait_on_exhaustion: true, wait_timeout: 2s, fallback_pool: p2 }
  concurrency: { max_concurrent_users: 10, spawn_rate_limit: 100/s, action_rate_limit: 50/s }
actions:
  discard_response_bodies: true
  actions:
    - id: login
      call: POST
      with:
        url: "{{base.url}}/login?u={{user.id}}&t={{tenant.id}}&i={{user.iteration}}"
        bind_ip: "{{user.allocated_ip}}"
        headers: { content-type: application/json, x-n: 7, x-b: true }
        body: { user: "{{user.id}}", n: [1, 2] }
        timeouts: { dns_ms: 100, connect_ms: 200, first_byte_ms: 300, between_bytes_ms: 400, total_ms: 5000 }
        retries: { max: 2, base_ms: 10, max_backoff_ms: 100, non_idempotent: true }
        redirects: { follow: true, max: 3 }
        max_response_body: 1048576
        max_header_bytes: 65536
        keep_alive: true
        decompress: true
        discard_headers: false
        tls: { server_name: api.example }
        dynamic_tasks:
          - id: "again-{{user.id}}-{{user.iteration}}"
            action_id: legacy
            kind: action
            outgoing: [ { target: end, label: done } ]
          - { id: stop, kind: end }
      export:
        - { type: json, name: token, pointer: /token, scope: user, default: none }
        - { type: header, name: ct, header: content-type }
        - { type: status_code, name: code }
        - { name: body }
        - { type: assert, name: result.json, default: "{}" }
      checks:
        - { status: 200, name: ok }
        - { header: content-type, contains: json }
        - { body_contains: token }
        - { body_matches: "t[a-z]+" }
        - { json: /token, equals: abc }
        - { json: /n, matches: "^[0-9]+$" }
        - { duration: "<500ms" }
    - id: fetch
      call: get
      with:
        url: "http://127.0.0.1:8080/items"
        timeout: 5s
        retries: 3
        redirects: false
        response_body_limit: 100
        discard_body: true
        body_base64: aGVsbG8=
        pool: p2
        tenant: t1
        resource: r
        resource_type: vm
        release: keep
    - { id: legacy, call: head, with: { url: "http://127.0.0.1:8080/", timeout_ms: 100, redirects: 2 } }
    - id: ping
      call: udp.send-reply
      with:
        target: "127.0.0.1:7"
        payload: "hi {{user.id}}"
        bind_ip: "{{user.allocated_ip}}"
        timeout_ms: 500
        timeout-ms: 500
        timeout: 1s
        retry: { max: 1, backoff_ms: 10 }
        expect: { contains: hi, len: 4 }
        max_reply: 1500
      export: [ { type: content, name: pong } ]
      checks: [ { body_contains: hi }, { duration: "<1s" } ]
    - { id: blip, call: udp.send, with: { peer_ip: "127.0.0.1", peer_port: 9, payload_hex: "00ff", retries: 0 } }
workflows:
  nodes:
    - id: start
      type: action
      action: login
      edges:
        - { to: next, label: logged in, trigger: { condition: "{{login.code == 200 && !fetch.ok}}" } }
        - { to: end }
    - { id: next, type: action, action: fetch, edges: [ { to: last } ] }
    - { id: last, type: action, action: legacy, edges: [ { to: udp } ] }
    - { id: udp, action: ping, priority: 5, edges: [ { to: wait } ] }
    - id: wait
      type: wait
      on: { event: packet-rx, match: { action_id: ping, task_id: t, sock_id: 1, len: 4, payload_hex: "68692031", equals: "hi 1", contains: hi, matches: "^hi" } }
      edges: [ { to: blip-node } ]
    - { id: blip-node, action: blip, edges: [ { to: end } ] }
    - { id: end, type: end }
thresholds:
  http_req_duration: ["p(95)<500", { threshold: "avg<200", abort_on_fail: true, delay_abort_eval: 1s }]
  "http_req_failed{action:login}": "rate<0.01"
  checks: [ { threshold: "rate>0.9", abortOnFail: false, delayAbortEval: 2s } ]
tls:
  insecure_skip_verify: true
  min_version: "1.2"
  max_version: "1.3"
  server_name: api.example
  tenants:
    t1: { server_name: t1.example, min_version: "1.3" }
"#;

#[test]
fn bundled_scenarios_and_every_field_satisfy_the_schema() {
    let v = schema();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let demo = std::fs::read_to_string(root.join("host/scenarios/demo.yaml")).unwrap();
    assert!(
        demo.contains("yaml-language-server: $schema=../scenario.schema.json"),
        "the demo names its schema for editors"
    );
    // The scenario the Kubernetes manifests carry (a ConfigMap's data).
    let cm: serde_json::Value = serde_yaml::from_str(
        &std::fs::read_to_string(root.join("deploy/kubernetes/run/scenario.yaml")).unwrap(),
    )
    .unwrap();
    let k8s = cm["data"]["scenario.yaml"].as_str().unwrap().to_string();
    for (name, text) in [
        ("demo", &demo),
        ("k8s", &k8s),
        ("everything", &EVERYTHING.to_string()),
    ] {
        assert_eq!(schema_problems(&v, text), Vec::<String>::new(), "{name}");
    }
    let (ok, err) = validate(EVERYTHING, true);
    assert!(ok, "validate --strict accepts every field: {err}");
}

/// An unknown field anywhere: the schema refuses it, `validate --strict` refuses it (with the
/// same path), plain `validate` warns (refuses, inside `with`). A wrong type: both refuse.
#[test]
fn the_schema_and_validate_agree() {
    let v = schema();
    let unknown = [
        // A top-level section (the original's monitoring).
        ("", "monitoring"),
        ("workbook:\n", "bogus"),
        ("    - { id: p1,", "color"),
        ("  user_lifetime: { mode: loop,", "speed"),
        ("    ip_binding: { enabled: true,", "sticky"),
        ("    - id: login\n", "owner"),
        ("        - { type: status_code,", "path"),
        ("        - { status: 200,", "severity"),
        ("        - { to: next,", "weight"),
        ("  insecure_skip_verify: true\n", "ciphers"),
        ("    t1: { server_name: t1.example,", "alpn"),
        ("        tls: {", "sni"),
        ("    capacity_management: {", "spill"),
        ("            outgoing: [ {", "weight2"),
        ("        expect: {", "near"),
        ("      on: {", "after"),
    ];
    for (anchor, field) in unknown {
        let at = EVERYTHING
            .find(anchor)
            .unwrap_or_else(|| panic!("{anchor}"));
        let insert = if anchor.is_empty() {
            (0, format!("{field}: {{ enabled: true }}\n"))
        } else if anchor.ends_with('\n') {
            let indent: String = EVERYTHING[at..]
                .lines()
                .nth(1)
                .map(|l| l.chars().take_while(|c| *c == ' ').collect())
                .unwrap_or_default();
            (at + anchor.len(), format!("{indent}{field}: 1\n"))
        } else {
            (at + anchor.len(), format!(" {field}: 1,"))
        };
        let mut text = EVERYTHING.to_string();
        text.insert_str(insert.0, &insert.1);
        let problems = schema_problems(&v, &text);
        assert!(
            problems.iter().any(|p| p.contains(field)),
            "schema on {field}: {problems:?}"
        );
        let (ok, err) = validate(&text, true);
        assert!(!ok && err.contains(field), "--strict on {field}: {err}");
        let (ok, err) = validate(&text, false);
        if field == "sni" {
            // Inside `with`: the executor refuses what it does not know, so every request
            // would fail; validate says so whatever the mode.
            assert!(
                !ok && err.contains("with.tls.sni: unknown TLS setting"),
                "{err}"
            );
        } else {
            assert!(
                ok && err.contains(&format!("{field}: unknown field, ignored")),
                "plain validate on {field}: {err}"
            );
        }
    }
    for (from, to) in [
        ("spawn_users: 2", "spawn_users: many"),
        ("keep_alive: true", "keep_alive: 3"),
        (
            "actions:\n  discard_response_bodies: true\n  actions:",
            "actions:\n  discard_response_bodies: true\n  actions: 7\n  x:",
        ),
        (
            "discard_response_bodies: true",
            "discard_response_bodies: maybe",
        ),
    ] {
        let text = EVERYTHING.replacen(from, to, 1);
        assert!(!schema_problems(&v, &text).is_empty(), "schema on {to}");
        assert!(!validate(&text, false).0, "validate on {to}");
    }
}
