//! deploy/kubernetes holds what the README says: the scenario in its ConfigMap validates, N
//! is in one place, and the Jobs' command lines work: run here as the pods would run them
//! (their shell, their environment, a local etcd and a loopback scenario), the segments put
//! their results in etcd and the merge Job's command merges them. (CI also checks the
//! manifests against the Kubernetes API schemas offline, with kubernetes-validate.)

use integration_tests::scratch::Scratch;
use std::process::{Child, Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_scheduler");
const DEPLOY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/kubernetes");

/// The documents of a manifest file.
fn manifests(name: &str) -> Vec<serde_yaml::Value> {
    let text = std::fs::read_to_string(format!("{DEPLOY}/{name}")).unwrap();
    text.split("\n---\n")
        .map(|doc| serde_yaml::from_str(doc).unwrap())
        .collect()
}

fn manifest(name: &str) -> serde_yaml::Value {
    manifests(name).remove(0)
}

fn command_line(job: &serde_yaml::Value) -> String {
    let c = &job["spec"]["template"]["spec"]["containers"][0];
    c["args"][0].as_str().unwrap().to_string()
}

#[test]
fn the_scenario_validates_and_n_is_in_one_place() {
    let cm = manifest("run/scenario.yaml");
    let scenario = cm["data"]["scenario.yaml"].as_str().unwrap();
    let dir = Scratch::new("deploy-test");
    let path = dir.join("scenario.yaml");
    std::fs::write(&path, scenario).unwrap();
    let out = Command::new(BIN)
        .arg("validate")
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // An Indexed Job whose index is the segment, of `completions`, which the kustomization
    // copies to parallelism and to the annotation the pods read N from.
    let job = manifest("run/job.yaml");
    assert_eq!(job["spec"]["completionMode"].as_str(), Some("Indexed"));
    let run = command_line(&job);
    assert!(
        run.contains("--segment \"${JOB_COMPLETION_INDEX}/${SEGMENTS}\""),
        "{run}"
    );
    let k = manifest("run/kustomization.yaml");
    let r = &k["replacements"][0];
    assert_eq!(r["source"]["fieldPath"].as_str(), Some("spec.completions"));
    let targets: Vec<&str> = r["targets"][0]["fieldPaths"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect();
    assert_eq!(
        targets,
        [
            "spec.parallelism",
            "spec.template.metadata.annotations.scheduler/segments"
        ]
    );
    let env = &job["spec"]["template"]["spec"]["containers"][0]["env"][0];
    assert_eq!(env["name"].as_str(), Some("SEGMENTS"));
}

/// The pods' shell command with the scheduler found on PATH and the scenario at `scenario`.
fn pod(command: &str, scenario: &std::path::Path, env: &[(&str, &str)]) -> Child {
    let bin_dir = std::path::Path::new(BIN).parent().unwrap();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let command = command
        .replace("/scenario/scenario.yaml", scenario.to_str().unwrap())
        .replace(
            "/reports/",
            &format!("{}/", scenario.parent().unwrap().display()),
        );
    Command::new("sh")
        .arg("-c")
        .arg(command)
        .env("PATH", path)
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

#[test]
fn the_jobs_commands_run_and_merge_through_etcd() {
    let Some(bin) = integration_tests::etcd::binary() else {
        assert!(
            std::env::var("REQUIRE_ETCD").is_err(),
            "REQUIRE_ETCD is set but etcd is not installed"
        );
        eprintln!("SKIPPED: etcd is not installed");
        return;
    };
    let etcd = integration_tests::etcd::Etcd::start(&bin, "deploy").unwrap();
    let target = integration_tests::http_server::serve("127.0.0.1:0", None, |r| {
        if r.path == "/missing" {
            integration_tests::http_server::Reply::status(404, &[])
        } else {
            integration_tests::http_server::Reply::ok("ok")
        }
    });
    let dir = Scratch::new("deploy-jobs");
    // The ConfigMap's scenario on loopback: its pool and target here.
    let cm = manifest("run/scenario.yaml");
    let text = cm["data"]["scenario.yaml"]
        .as_str()
        .unwrap()
        .replace("10.200.0.0/24", "127.0.98.0/28")
        .replace("http://target.default.svc:8080/", &target.url("/"))
        .replace("spawn_users: 300", "spawn_users: 6")
        .replace("iterations: 10", "iterations: 2");
    let scenario = dir.join("scenario.yaml");
    std::fs::write(&scenario, text).unwrap();
    let run_cm = manifest("run/run.yaml");
    let run_id = run_cm["data"]["RUN_ID"].as_str().unwrap();
    let env = [
        ("ETCD", etcd.url.as_str()),
        ("RUN_ID", run_id),
        ("SEGMENTS", "3"),
    ];
    let merge = pod(
        &command_line(&manifests("run/merge.yaml")[0]),
        &scenario,
        &env,
    );
    let job = command_line(&manifest("run/job.yaml"));
    let segments: Vec<Child> = (0..3)
        .map(|i| {
            let index = i.to_string();
            let mut env = env.to_vec();
            env.push(("JOB_COMPLETION_INDEX", &index));
            pod(&job, &scenario, &env)
        })
        .collect();
    for s in segments {
        let out = s.wait_with_output().unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let out = merge.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report = dir.join(format!("{run_id}.json"));
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(report).unwrap()).unwrap();
    assert_eq!(v["totals"]["ok"], 12, "{v}");
    assert!(dir.join(format!("{run_id}.html")).exists());
}
