//! One connection: bytes in, answers out. Requests are read in order (pipelining), each
//! answered from the routes through the middleware; an answer with a delay holds back those
//! behind it, so they go out in order. A refused request is answered and ends the connection.

use alloc::string::{String, ToString};
use alloc::vec::Vec;

use crate::config::{Config, Middleware};
use crate::request::{Read, Reader, Request};
use crate::response::{Answer, Scope};
use crate::route;

/// What the connection should do.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// Send `bytes` at `at_ms` (the caller's clock), then close if `close`; `status` is for
    /// the counts (none for an interim `100 Continue`).
    Send {
        bytes: Vec<u8>,
        at_ms: u64,
        close: bool,
        status: Option<u16>,
    },
    /// Drop the connection without an answer (an injected reset).
    Reset,
    /// An access-log line.
    Log(String),
}

/// What answering needs from the server: its config, its address and id, a random source.
pub struct Server {
    pub config: Config,
    /// Where routes with a `dir` read their files.
    pub files: alloc::boxed::Box<dyn crate::files::Files + Send>,
    /// `address:port` as bound.
    pub bound: String,
    rng: u64,
}

impl Server {
    pub fn new(config: Config, bound: String, seed: u64) -> Server {
        Server {
            config,
            files: alloc::boxed::Box::new(crate::files::NoFiles),
            bound,
            rng: seed | 1,
        }
    }

    /// A uniform draw in [0, 1).
    fn draw(&mut self) -> f64 {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        (self.rng >> 11) as f64 / (1u64 << 53) as f64
    }

    /// The answer to `req`, its delay, and whether to reset instead.
    fn answer(&mut self, req: &Request) -> (Answer, u64, bool) {
        let found = route::find(&self.config.routes, &req.method, &req.path);
        let (mut answer, mut delay) = match found {
            Ok((r, params)) => {
                let scope = Scope {
                    req,
                    params: &params,
                    server: (&self.bound, &self.config.id),
                };
                let mut a = if let Some(dir) = &r.dir {
                    let rest = params
                        .iter()
                        .find(|(k, _)| k == "rest")
                        .map_or("", |p| p.1.as_str());
                    crate::files::answer(req, dir, rest, self.files.as_mut())
                } else if r.echo {
                    let mut a = Answer::new(r.status, req.body.clone());
                    if let Some(t) = req.header("content-type") {
                        a.headers.push(("Content-Type".into(), t.to_string()));
                    }
                    a
                } else {
                    Answer::new(r.status, scope.fill(&r.body).into_bytes())
                };
                for (k, v) in &r.headers {
                    a.headers.push((k.clone(), scope.fill(v)));
                }
                (a, r.delay_ms)
            }
            Err(allowed) if !allowed.is_empty() => {
                let mut a = Answer::text(405, "method not allowed");
                a.headers.push(("Allow".into(), allowed.join(", ")));
                (a, 0)
            }
            Err(_) => (Answer::text(404, "not found"), 0),
        };
        let mut reset = false;
        let mw = self.config.middleware.clone();
        for m in &mw {
            match m {
                Middleware::Fault {
                    latency_ms,
                    error_share,
                    status,
                    reset_share,
                } => {
                    delay += latency_ms;
                    if *reset_share > 0.0 && self.draw() < *reset_share {
                        reset = true;
                    }
                    if *error_share > 0.0 && self.draw() < *error_share {
                        answer = Answer::text(*status, "injected fault");
                    }
                }
                Middleware::Headers(hs) => {
                    let scope = Scope {
                        req,
                        params: &[],
                        server: (&self.bound, &self.config.id),
                    };
                    for (k, v) in hs {
                        answer.headers.push((k.clone(), scope.fill(v)));
                    }
                }
                Middleware::AccessLog => {}
            }
        }
        (answer, delay, reset)
    }

    fn logs(&self) -> bool {
        self.config.middleware.contains(&Middleware::AccessLog)
    }
}

/// A connection's state between reads.
#[derive(Debug, Default)]
pub struct Conn {
    buf: Vec<u8>,
    reader: Reader,
    /// No answer before this time (the one before it is delayed).
    busy_until: u64,
    /// The connection ends after the answers queued (a refusal, `Connection: close`).
    pub closing: bool,
}

impl Conn {
    /// Whether a request has begun and is not whole (for the head and body deadlines).
    pub fn mid_request(&self) -> bool {
        !self.buf.is_empty() || self.reader.in_body()
    }

    /// Take `data`; what to do about it. `now_ms` is the caller's clock, `date` the HTTP date
    /// now, `peer` the client's address (for the log).
    pub fn feed(
        &mut self,
        data: &[u8],
        server: &mut Server,
        now_ms: u64,
        date: &str,
        peer: &str,
    ) -> Vec<Output> {
        let mut out = Vec::new();
        if self.closing {
            return out;
        }
        self.buf.extend_from_slice(data);
        loop {
            match self.reader.read(&mut self.buf, &server.config.limits) {
                Read::More(true) => {
                    self.reader.continued = true;
                    out.push(Output::Send {
                        bytes: b"HTTP/1.1 100 Continue\r\n\r\n".to_vec(),
                        at_ms: now_ms.max(self.busy_until),
                        close: false,
                        status: None,
                    });
                }
                Read::More(false) => return out,
                Read::Refused(r) => {
                    self.closing = true;
                    let a = Answer::text(r.status, r.why);
                    out.push(self.send(a, now_ms, date, (false, true)));
                    return out;
                }
                Read::Request(req) => {
                    let (answer, delay, reset) = server.answer(&req);
                    if server.logs() {
                        let line = alloc::format!(
                            "{peer} {} {} {}",
                            req.method,
                            req.path,
                            if reset {
                                "reset".to_string()
                            } else {
                                answer.status.to_string()
                            }
                        );
                        out.push(Output::Log(line));
                    }
                    if reset {
                        self.closing = true;
                        out.push(Output::Reset);
                        return out;
                    }
                    let close = !req.keep_alive();
                    let at = now_ms.saturating_add(delay);
                    out.push(self.send(answer, at, date, (req.method == "HEAD", close)));
                    if close {
                        self.closing = true;
                        return out;
                    }
                }
            }
        }
    }

    fn send(&mut self, a: Answer, at: u64, date: &str, (head, close): (bool, bool)) -> Output {
        let at_ms = at.max(self.busy_until);
        self.busy_until = at_ms;
        Output::Send {
            bytes: a.encode(date, head, close),
            at_ms,
            close,
            status: Some(a.status),
        }
    }

    /// The answer to a request head that took too long (a slow client): 408, then close.
    pub fn too_slow(&mut self, now_ms: u64, date: &str) -> Output {
        self.closing = true;
        self.send(
            Answer::text(408, "request took too long"),
            now_ms,
            date,
            (false, true),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(routes: &str, middleware: &str) -> Server {
        let text = alloc::format!(
            r#"{{"id":"b","address":"127.0.0.1","port":1,"routes":{routes},"middleware":{middleware}}}"#
        );
        Server::new(Config::parse(&text).unwrap(), "127.0.0.1:1".into(), 7)
    }

    fn sent(outs: &[Output]) -> Vec<String> {
        outs.iter()
            .filter_map(|o| match o {
                Output::Send { bytes, .. } => Some(String::from_utf8_lossy(bytes).into_owned()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn routes_templates_echo_and_errors() {
        let mut s = server(
            r#"[{"method":"GET","path":"/u/{id}","body":"user {{path.id}} q={{query.q}} h={{header.x-a}} at {{server.address}}","headers":{"X-Id":"{{path.id}}"}},
                {"method":"POST","path":"/echo","echo":true},
                {"path":"/slow","delay_ms":50}]"#,
            r#"[{"headers":{"X-Served-By":"{{server.id}}"}},{"access_log":true}]"#,
        );
        let mut c = Conn::default();
        let outs = c.feed(
            b"GET /u/7?q=a+b HTTP/1.1\r\nHost: h\r\nX-A: z\r\n\r\nPOST /echo HTTP/1.1\r\nHost: h\r\nContent-Type: a/b\r\nContent-Length: 2\r\n\r\nhiDELETE /u/1 HTTP/1.1\r\nHost: h\r\n\r\nGET /nope HTTP/1.1\r\nHost: h\r\n\r\nHEAD /u/2 HTTP/1.1\r\nHost: h\r\n\r\n",
            &mut s,
            1000,
            "D",
            "127.0.0.9:5",
        );
        let texts = sent(&outs);
        assert!(texts[0].starts_with("HTTP/1.1 200 OK\r\n"), "{}", texts[0]);
        assert!(texts[0].contains("X-Id: 7\r\n") && texts[0].contains("X-Served-By: b\r\n"));
        assert!(
            texts[0].ends_with("user 7 q=a b h=z at 127.0.0.1:1"),
            "{}",
            texts[0]
        );
        assert!(texts[1].contains("Content-Type: a/b") && texts[1].ends_with("\r\n\r\nhi"));
        assert!(texts[2].starts_with("HTTP/1.1 405") && texts[2].contains("Allow: GET\r\n"));
        assert!(texts[3].starts_with("HTTP/1.1 404"));
        assert!(
            texts[4].contains("Content-Length: 27\r\n") && texts[4].ends_with("\r\n\r\n"),
            "{}",
            texts[4]
        );
        assert!(outs.contains(&Output::Log("127.0.0.9:5 DELETE /u/1 405".into())));
        // A delayed answer holds back the one behind it.
        let outs = c.feed(
            b"GET /slow HTTP/1.1\r\nHost: h\r\n\r\nGET /u/3 HTTP/1.1\r\nHost: h\r\n\r\n",
            &mut s,
            2000,
            "D",
            "p",
        );
        let ats: Vec<u64> = outs
            .iter()
            .filter_map(|o| match o {
                Output::Send { at_ms, .. } => Some(*at_ms),
                _ => None,
            })
            .collect();
        assert_eq!(ats, [2050, 2050]);
    }

    #[test]
    fn refusals_close_and_faults_fire() {
        let mut s = server(
            r#"[{"path":"/*"}]"#,
            r#"[{"fault":{"error_share":1,"status":503}}]"#,
        );
        let mut c = Conn::default();
        let t = sent(&c.feed(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n", &mut s, 0, "D", "p"));
        assert!(t[0].starts_with("HTTP/1.1 503"));
        let t = sent(&c.feed(
            b"GET / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
            &mut s,
            0,
            "D",
            "p",
        ));
        assert!(t[0].starts_with("HTTP/1.1 400") && t[0].contains("Connection: close"));
        assert!(c.closing);
        let mut s = server(r#"[{"path":"/*"}]"#, r#"[{"fault":{"reset_share":1}}]"#);
        let outs = Conn::default().feed(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n", &mut s, 0, "D", "p");
        assert_eq!(outs, [Output::Reset]);
    }
}
