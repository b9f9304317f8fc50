//! Segments (`run --segment I/N`): a share with no user has nothing to run, which is no
//! failure (the merge of all shares judges the run).

mod common;
use common::*;

#[test]
fn an_empty_segment_exits_0() {
    let (server, log) = recording_target();
    let dir = tmp("empty-segment");
    let s = format!(
        r#"
version: "1.0"
name: two-users
load: {{ ramp_up: {{ phases: [ {{ spawn_users: 2 }} ] }} }}
actions:
  actions: [ {{ id: a, call: get, with: {{ url: "http://127.0.0.1:{}/" }} }} ]
workflows:
  nodes: [ {{ id: n, action: a }} ]
"#,
        server.addr.port()
    );
    let path = scenario_file(&dir, &s);
    let mut codes = Vec::new();
    for seg in ["0/3", "1/3", "2/3"] {
        let out = run(&["run", path.to_str().unwrap(), "--segment", seg]);
        codes.push(out.status.code());
        if seg == "2/3" {
            let text = String::from_utf8_lossy(&out.stdout);
            assert!(text.contains("nothing to run in this segment"), "{text}");
        }
    }
    assert_eq!(codes, [Some(0), Some(0), Some(0)]);
    assert_eq!(log.lock().unwrap().len(), 2, "two users ran, once each");
}

/// `merge` takes one run's parts only: the same scenario, the same run id, each segment once,
/// none missing (unless --partial); each file's totals add up; the time series is kept.
#[test]
fn merge_refuses_wrong_sets() {
    let (server, _log) = recording_target();
    let dir = tmp("merge-sets");
    let s = format!(
        r#"
version: "1.0"
name: six
load: {{ ramp_up: {{ phases: [ {{ spawn_users: 6 }} ] }} }}
actions:
  actions: [ {{ id: a, call: get, with: {{ url: "http://127.0.0.1:{}/" }} }} ]
workflows:
  nodes: [ {{ id: n, action: a }} ]
"#,
        server.addr.port()
    );
    let path = scenario_file(&dir, &s);
    let result = |seg: &str, id: &str, path: &std::path::Path| {
        let stem = path.file_stem().unwrap().to_string_lossy().to_string();
        let f = dir.join(format!("r-{stem}-{}-{id}.json", seg.replace('/', "of")));
        let out = run(&[
            "run",
            path.to_str().unwrap(),
            "--segment",
            seg,
            "--run-id",
            id,
            "--result",
            f.to_str().unwrap(),
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        f.display().to_string()
    };
    let (r0, r1, r2) = (
        result("0/3", "a", &path),
        result("1/3", "a", &path),
        result("2/3", "a", &path),
    );
    let merge = |files: &[&str], extra: &[&str]| {
        let mut args = vec!["merge"];
        args.extend_from_slice(files);
        args.extend_from_slice(extra);
        let out = run(&args);
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    let json = dir.join("m.json");
    let (code, err) = merge(&[&r0, &r1, &r2], &["--json", json.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{err}");
    let m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(m["totals"]["requests"], 6);
    let in_series: u64 = m["series"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["requests"].as_u64().unwrap())
        .sum();
    assert_eq!(in_series, 6, "the series is kept: {}", m["series"]);

    let (code, err) = merge(&[&r0, &r1], &[]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("segments missing: 2/3"), "{err}");
    let (code, err) = merge(&[&r0, &r1], &["--partial"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains("without segment(s) 2"), "{err}");
    let (code, err) = merge(&[&r0, &r0, &r1, &r2], &[]);
    assert_eq!(code, Some(2));
    assert!(err.contains("segment 0/3 twice"), "{err}");
    let other_run = result("2/3", "b", &path);
    let (code, err) = merge(&[&r0, &r1, &other_run], &[]);
    assert_eq!(code, Some(2));
    assert!(err.contains("another run"), "{err}");
    let other = dir.join("other.yaml");
    std::fs::write(&other, s.replace("name: six", "name: seven")).unwrap();
    let other_scenario = result("2/3", "a", &other);
    let (code, err) = merge(&[&r0, &r1, &other_scenario], &[]);
    assert_eq!(code, Some(2));
    assert!(err.contains("another scenario"), "{err}");
    // A file whose totals do not add up.
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&r2).unwrap()).unwrap();
    v["totals"]["count"] = 99.into();
    let bad = dir.join("bad.json");
    std::fs::write(&bad, v.to_string()).unwrap();
    let (code, err) = merge(&[&r0, &r1, bad.to_str().unwrap()], &[]);
    assert_eq!(code, Some(2));
    assert!(err.contains("add up"), "{err}");
}
