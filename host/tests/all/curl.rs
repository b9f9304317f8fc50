//! `exec` beside curl: the same commands against the same server give the same standard
//! output, the same files and the same exit codes.

use std::path::Path;
use std::process::{Command, Output};

use integration_tests::http_server::{Reply, TestServer, serve};

use crate::common::*;

/// Echoes what a curl user checks: the method and path, the headers curl's flags set, the
/// body. `/missing` is a 404, `/hop/N` redirects N more times before `/text`.
fn echo_server() -> TestServer {
    serve("127.0.0.1:0", None, |r| {
        if r.path == "/login" {
            return Reply::status(
                302,
                &[
                    ("Location", "/echo"),
                    ("Set-Cookie", "sid=abc; Path=/; HttpOnly"),
                    ("Set-Cookie", "theme=dark; Max-Age=3600; Path=/echo"),
                ],
            );
        }
        if r.path.starts_with("/form") {
            return Reply::ok(form_parts(r));
        }
        if let Some(code) = r.path.strip_prefix("/status/") {
            return Reply::status(code.parse().unwrap_or(500), &[]);
        }
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
            "/trailers" => Reply::Raw(
                b"HTTP/1.1 200\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\r\n5;x=1\r\nhello\r\n0\r\nX-Sum: 5\r\n\r\n"
                    .to_vec(),
            ),
            "/short" => Reply::RawClose(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nok".to_vec()),
            // A transfer coding neither client asked for: refused, not passed on as the body.
            "/te-gzip" => Reply::RawClose(
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
                    .to_vec(),
            ),
            "/cl-list" => Reply::Raw(b"HTTP/1.1 200 OK\r\nContent-Length: 2, 2\r\n\r\nok".to_vec()),
            "/bad-chunk" => Reply::RawClose(
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n"
                    .to_vec(),
            ),
            "/bad-gzip" => Reply::RawClose(
                b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: 5\r\n\r\nhello".to_vec(),
            ),
            "/text" => Reply::ok("hello\n"),
            _ => {
                let h = |n: &str| r.header(n).unwrap_or("-").to_string();
                let mut body = format!(
                    "{} {}\ncontent-type: {}\nauthorization: {}\nuser-agent-set: {}\nreferer: {}\naccept: {}\ncookie: {}\nrange: {}\n",
                    r.method,
                    r.path,
                    h("content-type"),
                    h("authorization"),
                    r.header("user-agent").is_some_and(|a| a == "probe/1"),
                    h("referer"),
                    h("accept"),
                    h("cookie"),
                    h("range"),
                )
                .into_bytes();
                body.extend_from_slice(&r.body);
                Reply::ok(body)
            }
        }
    })
}

/// A multipart/form-data body's parts as the server reads them (the boundary, which each
/// client picks at random, left out).
fn form_parts(r: &integration_tests::http_server::Req) -> String {
    let ctype = r.header("content-type").unwrap_or_default().to_string();
    let Some((kind, boundary)) = ctype.split_once("; boundary=") else {
        return format!("not multipart: {ctype}\n");
    };
    let body = String::from_utf8_lossy(&r.body).into_owned();
    let mut out = format!("{} {kind}\n", r.method);
    for part in body.split(&format!("--{boundary}")).skip(1) {
        if part.starts_with("--") {
            out.push_str("end\n");
            break;
        }
        out.push_str(&format!(
            "part [{}]\n",
            part.trim_start_matches("\r\n").trim_end_matches("\r\n")
        ));
    }
    out
}

/// The cookie lines of a Netscape cookie file, sorted (each client orders and heads the file
/// its own way), each with its expiry apart (computed from Max-Age, it may differ by the
/// second the two clients ran in).
fn cookie_lines(path: &Path) -> Vec<(String, u64)> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let mut lines: Vec<(String, u64)> = text
        .lines()
        .filter(|l| !l.is_empty() && (!l.starts_with('#') || l.starts_with("#HttpOnly_")))
        .map(|l| {
            let mut f: Vec<&str> = l.split('\t').collect();
            let expires = f.get(4).and_then(|e| e.parse().ok()).unwrap_or(0);
            if f.len() > 4 {
                f[4] = "-";
            }
            (f.join("\t"), expires)
        })
        .collect();
    lines.sort();
    lines
}

/// Whether curl is missing here (a test then skips, unless `REQUIRE_CURL` is set: then it
/// fails).
fn curl_missing() -> bool {
    let installed = Command::new("curl")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !installed {
        assert!(
            std::env::var("REQUIRE_CURL").is_err(),
            "REQUIRE_CURL is set but curl is missing"
        );
        eprintln!("SKIPPED: curl is not installed");
    }
    !installed
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
    if curl_missing() {
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
    let format_file = dir.join("format.txt");
    std::fs::write(&format_file, "%{http_code}\\n%{size_download}\r\n|\n").unwrap();
    let header_file = dir.join("headers.txt");
    std::fs::write(
        &header_file,
        "Referer;\r\nAccept:\n\nContent-Type: text/x-a\n",
    )
    .unwrap();
    let port = server.addr.port();
    let jar = dir.join("jar.txt");
    std::fs::write(
        &jar,
        "# Netscape HTTP Cookie File\n127.0.0.1\tFALSE\t/\tFALSE\t0\tkept\tyes\n#HttpOnly_127.0.0.1\tFALSE\t/echo\tFALSE\t4102444800\tdeep\t1\n127.0.0.1\tFALSE\t/\tFALSE\t1000\tstale\tno\n",
    )
    .unwrap();
    let closed = free_port();
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
        // `Name:` takes a flag's header away, `Name;` sends it empty, a value always goes.
        vec![
            "-d".into(),
            "a=1".into(),
            "-H".into(),
            "Content-Type:".into(),
            "-H".into(),
            "Accept:".into(),
            format!("{base}/echo"),
        ],
        vec![
            "-d".into(),
            "a=1".into(),
            "-H".into(),
            at(&header_file),
            format!("{base}/echo"),
        ],
        vec![
            "-e".into(),
            "http://from/".into(),
            "-H".into(),
            "Referer;".into(),
            "-H".into(),
            "Accept: text/plain".into(),
            "-H".into(),
            "Accept:".into(),
            format!("{base}/echo"),
        ],
        vec![
            "-w".into(),
            "%{http_code} %{size_download}\\n".into(),
            format!("{base}/text"),
        ],
        vec!["-o".into(), "OUT".into(), format!("{base}/text")],
        vec!["-s".into(), format!("http://127.0.0.1:{closed}/")],
        vec![
            "-G".into(),
            "-d".into(),
            "a=1".into(),
            "--data-urlencode".into(),
            "q=hello world&more".into(),
            format!("{base}/echo?x=0"),
        ],
        vec![
            "--data-urlencode".into(),
            "name@".to_string() + &form.display().to_string(),
            format!("{base}/echo"),
        ],
        vec![
            "--url-query".into(),
            "a=b".into(),
            "--url-query".into(),
            "+c=d%20".into(),
            "--url-query".into(),
            "x y&z".into(),
            format!("{base}/echo?k=v#frag"),
        ],
        vec!["-r".into(), "0-3".into(), format!("{base}/echo")],
        vec![format!("{base}/te-gzip")],
        vec![format!("{base}/cl-list")],
        vec![format!("{base}/bad-chunk")],
        vec!["--compressed".into(), format!("{base}/bad-gzip")],
        vec!["-g".into(), format!("{base}/echo/a[1]{{x,y}}?q=[2]")],
        vec![
            "-T".into(),
            bin.display().to_string(),
            format!("{base}/echo/"),
        ],
        vec![
            "-F".into(),
            "title=a report".into(),
            "-F".into(),
            format!("doc=@{};type=text/x-notes", form.display()),
            "-F".into(),
            format!("raw=@{}", bin.display()),
            format!("{base}/form"),
        ],
        vec!["-b".into(), "a=1; b=2".into(), format!("{base}/echo")],
        vec![
            "-L".into(),
            "-c".into(),
            "OUT".into(),
            format!("{base}/login"),
        ],
        vec![
            "-b".into(),
            jar.display().to_string(),
            format!("{base}/echo"),
        ],
        vec![
            "--resolve".into(),
            format!("example.test:{port}:127.0.0.1"),
            format!("http://example.test:{port}/text"),
        ],
        vec![
            "--interface".into(),
            "127.0.0.5".into(),
            "-w".into(),
            "%{local_ip} %{remote_port}".into(),
            format!("{base}/text"),
        ],
        vec![
            "-4".into(),
            "--http1.1".into(),
            "--limit-rate".into(),
            "1M".into(),
            format!("http://localhost:{port}/text"),
        ],
        vec![
            "--retry".into(),
            "1".into(),
            "--retry-delay".into(),
            "1".into(),
            "-s".into(),
            format!("http://127.0.0.1:{closed}/"),
        ],
        // -w after a failure too (000), and with -f; curl's other variables.
        vec![
            "-s".into(),
            "-o".into(),
            "/dev/null".into(),
            "-w".into(),
            "%{http_code} %{exitcode} %{size_download} %{http_version} %{remote_port}%{onerror} ok\\n".into(),
            format!("http://127.0.0.1:{closed}/"),
        ],
        vec![
            "-s".into(),
            "-f".into(),
            "-w".into(),
            "[%{http_code} %{exitcode}]".into(),
            format!("{base}/missing"),
        ],
        vec![
            "-w".into(),
            "%header{location}|%{redirect_url}|%{scheme} %{http_version} %{method} %{size_header}|%{header_json}|%{onerror}not shown".into(),
            format!("{base}/hop/1"),
        ],
        vec![
            "-s".into(),
            "--fail-with-body".into(),
            "-i".into(),
            format!("{base}/missing"),
        ],
        vec!["-f".into(), "-i".into(), format!("{base}/missing")],
        // -D: the head to a file or standard output (with -i, each line twice); -i's head
        // goes where the body goes.
        vec![
            "-D".into(),
            "-".into(),
            "-i".into(),
            format!("{base}/text"),
        ],
        vec!["-D".into(), "OUT".into(), format!("{base}/text")],
        vec!["-i".into(), "-o".into(), "OUT".into(), format!("{base}/text")],
        // -O: the URL's last segment, in --output-dir (made by --create-dirs).
        vec![
            "-O".into(),
            "--output-dir".into(),
            "OUT.d".into(),
            "--create-dirs".into(),
            format!("{base}/text?x=1"),
        ],
        vec!["-s".into(), "-O".into(), format!("{base}/")],
        // -w's format from a file (its own line ends left out).
        vec!["-w".into(), at(&format_file), format!("{base}/text")],
        // What browsers' "Copy as cURL" writes; two kinds of request are refused; -G leaves a
        // form alone.
        vec!["--data-raw".into(), "@x=1&y".into(), format!("{base}/echo")],
        vec![
            "-d".into(),
            "a=1".into(),
            "-T".into(),
            bin.display().to_string(),
            format!("{base}/echo"),
        ],
        vec!["-I".into(), "-d".into(), "a=1".into(), format!("{base}/echo")],
        vec![
            "-G".into(),
            "-F".into(),
            "title=x".into(),
            format!("{base}/form"),
        ],
        // A status line without a reason; trailers after the body (-i) or the head (-D).
        vec!["-i".into(), format!("{base}/trailers")],
        vec![
            "-D".into(),
            "-".into(),
            "-o".into(),
            "/dev/null".into(),
            format!("{base}/trailers"),
        ],
        // A body cut short: curl's 18.
        vec![
            "-s".into(),
            "-o".into(),
            "/dev/null".into(),
            "-w".into(),
            "%{exitcode}".into(),
            format!("{base}/short"),
        ],
        // The URL's user and password: Basic authentication, percent-decoded.
        vec![format!("http://ann:s%40cret@127.0.0.1:{port}/echo")],
        // No scheme: http, as curl guesses; a timeout of 0 is none.
        vec![
            "-m".into(),
            "0".into(),
            "-w".into(),
            "%{url_effective}".into(),
            format!("127.0.0.1:{port}/text"),
        ],
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
        if args.contains(&"-c") {
            let (e, c) = (
                cookie_lines(&dir.join("exec.out")),
                cookie_lines(&dir.join("curl.out")),
            );
            let text = |v: &[(String, u64)]| v.iter().map(|l| l.0.clone()).collect::<Vec<_>>();
            assert_eq!(text(&e), text(&c), "{args:?}: the cookie jar");
            for (a, b) in e.iter().zip(&c) {
                assert!(
                    a.1.abs_diff(b.1) <= 5,
                    "{args:?}: expiries {} and {}",
                    a.1,
                    b.1
                );
            }
        } else if args.contains(&"OUT.d") {
            assert_eq!(
                std::fs::read(dir.join("exec.out.d/text")).unwrap(),
                std::fs::read(dir.join("curl.out.d/text")).unwrap(),
                "{args:?}: the file"
            );
        } else if args.contains(&"OUT") {
            assert_eq!(
                std::fs::read(dir.join("exec.out")).unwrap(),
                std::fs::read(dir.join("curl.out")).unwrap(),
                "{args:?}: the file"
            );
        }
    }
}

/// `-w '%{json}'`: one JSON object of the variables, numbers as numbers, after an answer and
/// after a failure.
#[test]
fn exec_write_out_json_is_one_object() {
    let server = echo_server();
    let closed = free_port();
    let run = |url: &str| {
        let out = Command::new(BIN)
            .args(["exec", "-s", "-o", "/dev/null", "-w", "%{json}", url])
            .output()
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        (out.status.code(), v)
    };
    let (code, v) = run(&server.url("/text"));
    assert_eq!(code, Some(0));
    assert_eq!(v["http_code"], 200);
    assert_eq!(v["size_download"], 6);
    assert_eq!(v["exitcode"], 0);
    assert_eq!(v["errormsg"], serde_json::Value::Null);
    assert_eq!(v["scheme"], "HTTP");
    assert!(v["time_total"].as_f64().is_some_and(|t| t > 0.0));
    let (code, v) = run(&format!("http://127.0.0.1:{closed}/"));
    assert_eq!(code, Some(7));
    assert_eq!(
        (v["http_code"].as_u64(), v["exitcode"].as_u64()),
        (Some(0), Some(7))
    );
    assert!(v["errormsg"].as_str().is_some_and(|m| !m.is_empty()));
}

/// `--retry` tries again what curl tries again: the same number of requests reach the server
/// for each answer, a POST included, and `--retry-all-errors` with `-f` retries a 404.
#[test]
fn exec_retries_as_curl_does() {
    if curl_missing() {
        return;
    }
    let server = echo_server();
    let cases: [&[&str]; 6] = [
        &["/status/500"],
        &["/status/501"],
        &["/status/408"],
        &["/status/404"],
        &["-d", "a=1", "/status/503"],
        &["-f", "--retry-all-errors", "/status/404"],
    ];
    for case in cases {
        let (path, flags) = case.split_last().unwrap();
        let url = server.url(path);
        let count = |prog: &str, pre: &[&str]| {
            let before = server.stats.requests();
            let out = Command::new(prog)
                .args(pre)
                .args([
                    "-s",
                    "-o",
                    "/dev/stdout",
                    "--retry",
                    "1",
                    "--retry-delay",
                    "1",
                ])
                .args(flags)
                .arg(&url)
                .output()
                .unwrap();
            (server.stats.requests() - before, out.status.code())
        };
        let (curl, exec) = (count("curl", &[]), count(BIN, &["exec"]));
        assert_eq!(exec, curl, "{case:?}: requests and exit codes");
    }
}

/// `-T -` PUTs standard input, as curl does (whole: a pipe has no length to send ahead).
#[test]
fn exec_uploads_standard_input() {
    use std::io::Write as _;
    let server = echo_server();
    let mut child = Command::new(BIN)
        .args(["exec", "-s", "-T", "-", &server.url("/echo")])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"ab\ncd").unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("PUT /echo\n"), "{text}");
    assert!(text.ends_with("ab\ncd"), "{text}");
}
