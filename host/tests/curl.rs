//! `exec` beside curl: the same commands against the same server give the same standard
//! output, the same files and the same exit codes.

use std::path::Path;
use std::process::{Command, Output};

use integration_tests::http_server::{Reply, TestServer, serve};

mod common;
use common::*;

/// Echoes what a curl user checks: the method and path, the headers curl's flags set, the
/// body. `/missing` is a 404, `/hop/N` redirects N more times before `/text`.
fn echo_server() -> TestServer {
    serve("127.0.0.1:0", None, |r| {
        if let Some(n) = r.path.strip_prefix("/hop/") {
            let n: u32 = n.parse().unwrap_or(0);
            let to = if n <= 1 {
                "/text".to_string()
            } else {
                format!("/hop/{}", n - 1)
            };
            return Reply::status(302, &[("Location", to.as_str())]);
        }
        match r.path.as_str() {
            "/missing" => Reply::status(404, &[]),
            "/text" => Reply::ok("hello\n"),
            _ => {
                let h = |n: &str| r.header(n).unwrap_or("-").to_string();
                let mut body = format!(
                    "{} {}\ncontent-type: {}\nauthorization: {}\nuser-agent-set: {}\nreferer: {}\n",
                    r.method,
                    r.path,
                    h("content-type"),
                    h("authorization"),
                    r.header("user-agent").is_some_and(|a| a == "probe/1"),
                    h("referer"),
                )
                .into_bytes();
                body.extend_from_slice(&r.body);
                Reply::ok(body)
            }
        }
    })
}

fn curl_installed() -> bool {
    Command::new("curl")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

fn both(args: &[&str], dir: &Path) -> (Output, Output) {
    let with = |prog: &str, pre: &[&str], out_name: &str| {
        let args: Vec<String> = args
            .iter()
            .map(|a| a.replace("OUT", &dir.join(out_name).display().to_string()))
            .collect();
        Command::new(prog).args(pre).args(&args).output().unwrap()
    };
    (
        with("curl", &[], "curl.out"),
        with(BIN, &["exec"], "exec.out"),
    )
}

#[test]
fn exec_answers_as_curl_does() {
    if !curl_installed() {
        assert!(
            std::env::var("REQUIRE_CURL").is_err(),
            "REQUIRE_CURL is set but curl is missing"
        );
        eprintln!("SKIPPED: curl is not installed");
        return;
    }
    let server = echo_server();
    let base = server.url("");
    let dir = tmp("curl");
    let form = dir.join("form.txt");
    std::fs::write(&form, "a=1\r\n&b=2\n").unwrap();
    let bin = dir.join("bin.dat");
    std::fs::write(&bin, b"x\r\ny\n\0z").unwrap();
    let at = |p: &Path| format!("@{}", p.display());
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let cases: Vec<Vec<String>> = vec![
        vec![format!("{base}/text")],
        vec!["-i".into(), format!("{base}/text")],
        vec!["-I".into(), format!("{base}/text")],
        vec![format!("{base}/missing")],
        vec!["-f".into(), format!("{base}/missing")],
        vec!["-s".into(), "-f".into(), format!("{base}/missing")],
        vec![format!("{base}/hop/2")],
        vec!["-L".into(), format!("{base}/hop/2")],
        vec![
            "-L".into(),
            "--max-redirs".into(),
            "1".into(),
            format!("{base}/hop/3"),
        ],
        vec!["-d".into(), "a=1&b=2".into(), format!("{base}/echo")],
        vec!["-d".into(), at(&form), format!("{base}/echo")],
        vec!["--data-binary".into(), at(&bin), format!("{base}/echo")],
        vec![
            "-d".into(),
            "{}".into(),
            "-H".into(),
            "Content-Type: application/json".into(),
            format!("{base}/echo"),
        ],
        vec![
            "-u".into(),
            "ann:secret".into(),
            "-A".into(),
            "probe/1".into(),
            "-e".into(),
            "http://from/".into(),
            format!("{base}/echo"),
        ],
        vec!["-X".into(), "PUT".into(), format!("{base}/echo")],
        vec![
            "-w".into(),
            "%{http_code} %{size_download}\\n".into(),
            format!("{base}/text"),
        ],
        vec!["-o".into(), "OUT".into(), format!("{base}/text")],
        vec!["-s".into(), format!("http://127.0.0.1:{closed}/")],
    ];
    for case in cases {
        let args: Vec<&str> = case.iter().map(String::as_str).collect();
        let (c, e) = both(&args, &dir);
        assert_eq!(
            e.status.code(),
            c.status.code(),
            "{args:?}: exit codes\ncurl: {}\nexec: {}",
            String::from_utf8_lossy(&c.stderr),
            String::from_utf8_lossy(&e.stderr)
        );
        assert_eq!(
            String::from_utf8_lossy(&e.stdout),
            String::from_utf8_lossy(&c.stdout),
            "{args:?}: standard output"
        );
        if args.contains(&"OUT") {
            assert_eq!(
                std::fs::read(dir.join("exec.out")).unwrap(),
                std::fs::read(dir.join("curl.out")).unwrap(),
                "{args:?}: the file"
            );
        }
    }
}
