//! WebSocket servers of other projects on a free loopback port, each logging one JSON line a
//! session as it ends: Python's `websockets` and `aiohttp`, and Node's `ws`. Each echoes
//! messages (text as text, binary as binary) and logs `{"src", "path", "msgs", "code"}`: the
//! peer's address, the path, the messages it received, the close code the client sent.
//! Paths: `/echo`; `/close` closes with 1011 after the first message; `/reject` refuses the
//! upgrade with 403; `/silent` reads and never answers; `/frag` answers each message in
//! three fragments (`websockets` only). Stopped and cleaned up on drop.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Websockets,
    Aiohttp,
    NodeWs,
}

pub struct WsServer {
    child: Child,
    pub dir: PathBuf,
    pub port: u16,
}

impl Drop for WsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

const WEBSOCKETS: &str = r#"
import asyncio, json, ssl, sys, websockets
from websockets.http11 import Response
from websockets.datastructures import Headers
port, log = int(sys.argv[1]), sys.argv[2]
def reject(conn, request):
    if request.path == "/reject":
        return conn.respond(403, "no\n")
async def handler(ws):
    n, peer = 0, ws.remote_address[0]
    try:
        async for m in ws:
            n += 1
            path = ws.request.path
            if path == "/close":
                await ws.close(1011, "server says no")
                break
            if path == "/silent":
                continue
            if path == "/frag":
                k = max(1, len(m) // 3)
                await ws.send([m[:k], m[k:2*k], m[2*k:]])
                continue
            await ws.send(m)
    except websockets.ConnectionClosed:
        pass
    finally:
        code = ws.close_code
        with open(log, "a") as f:
            f.write(json.dumps({"src": peer, "path": ws.request.path, "msgs": n, "code": code}) + "\n")
async def main():
    ctx = None
    if len(sys.argv) > 4:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(sys.argv[3], sys.argv[4])
    pick = lambda conn, offered: "chat" if "chat" in offered else None
    async with websockets.serve(handler, "127.0.0.1", port, ssl=ctx, process_request=reject,
                                select_subprotocol=pick, max_size=None):
        await asyncio.Future()
asyncio.run(main())
"#;

const AIOHTTP: &str = r#"
import json, ssl, sys
from aiohttp import web, WSMsgType
port, log = int(sys.argv[1]), sys.argv[2]
async def ws_handler(request):
    if request.path == "/reject":
        return web.Response(status=403, text="no\n")
    ws = web.WebSocketResponse(protocols=("chat",), max_msg_size=0)
    peer = request.remote
    await ws.prepare(request)
    n = 0
    async for m in ws:
        if m.type == WSMsgType.TEXT:
            n += 1
            if request.path == "/close":
                await ws.close(code=1011, message=b"server says no")
                break
            await ws.send_str(m.data)
        elif m.type == WSMsgType.BINARY:
            n += 1
            await ws.send_bytes(m.data)
    with open(log, "a") as f:
        f.write(json.dumps({"src": peer, "path": request.path, "msgs": n, "code": ws.close_code}) + "\n")
    return ws
app = web.Application()
app.router.add_get("/{tail:.*}", ws_handler)
ctx = None
if len(sys.argv) > 4:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(sys.argv[3], sys.argv[4])
web.run_app(app, host="127.0.0.1", port=port, ssl_context=ctx, print=None)
"#;

const NODE_WS: &str = r#"
const fs = require('fs'), https = require('https'), { WebSocketServer } = require('ws');
const [port, log, cert, key] = process.argv.slice(2);
const server = cert ? https.createServer({ cert: fs.readFileSync(cert), key: fs.readFileSync(key) }) : require('http').createServer();
const wss = new WebSocketServer({ noServer: true, handleProtocols: (ps) => ps.has('chat') ? 'chat' : false });
server.on('upgrade', (req, sock, head) => {
  if (req.url === '/reject') { sock.end('HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n'); return; }
  wss.handleUpgrade(req, sock, head, (ws) => wss.emit('connection', ws, req));
});
wss.on('connection', (ws, req) => {
  let n = 0;
  const peer = req.socket.remoteAddress;
  ws.on('message', (data, binary) => {
    n++;
    if (req.url === '/close') { ws.close(1011, 'server says no'); return; }
    ws.send(data, { binary });
  });
  ws.on('close', (code) => {
    fs.appendFileSync(log, JSON.stringify({ src: peer, path: req.url, msgs: n, code }) + '\n');
  });
});
server.listen(Number(port), '127.0.0.1');
"#;

fn works(cmd: &mut Command) -> bool {
    cmd.stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Whether `kind` can run here: the Python module, or Node with `ws` (found through
/// NODE_PATH).
pub fn available(kind: Kind) -> bool {
    match kind {
        Kind::Websockets => works(Command::new("python3").args(["-c", "import websockets"])),
        Kind::Aiohttp => works(Command::new("python3").args(["-c", "import aiohttp"])),
        Kind::NodeWs => works(Command::new("node").args(["-e", "require('ws')"])),
    }
}

impl WsServer {
    /// The server, over TLS with `tls` (certificate and key files), or `None` with a SKIPPED
    /// line, unless REQUIRE_WS_SERVERS is set (as in CI), where a missing one fails the test.
    pub fn start_or_skip(kind: Kind, name: &str, tls: Option<(&Path, &Path)>) -> Option<WsServer> {
        if !available(kind) {
            assert!(
                std::env::var("REQUIRE_WS_SERVERS").is_err(),
                "REQUIRE_WS_SERVERS is set but {kind:?} is not installed"
            );
            eprintln!(
                "SKIPPED: {kind:?} is not installed (pip install websockets aiohttp; npm install ws)"
            );
            return None;
        }
        let dir = std::env::temp_dir().join(format!("ws-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let (program, script, file) = match kind {
            Kind::Websockets => ("python3", WEBSOCKETS, "server.py"),
            Kind::Aiohttp => ("python3", AIOHTTP, "server.py"),
            Kind::NodeWs => ("node", NODE_WS, "server.js"),
        };
        std::fs::write(dir.join(file), script).unwrap();
        let mut cmd = Command::new(program);
        cmd.arg(dir.join(file))
            .arg(port.to_string())
            .arg(dir.join("sessions.log"));
        if let Some((cert, key)) = tls {
            cmd.arg(cert).arg(key);
        }
        let child = cmd
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("error.log")).unwrap())
            .spawn()
            .expect("start the WebSocket server");
        let s = WsServer { child, dir, port };
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "{kind:?} did not start: {}",
                s.errors()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Some(s)
    }

    pub fn errors(&self) -> String {
        std::fs::read_to_string(self.dir.join("error.log")).unwrap_or_default()
    }

    /// The sessions logged so far, waiting up to 5 s for `at_least` of them (a server logs a
    /// session when its close is done, which may come just after the client's run ends).
    pub fn sessions(&self, at_least: usize) -> Vec<serde_json::Value> {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let text = std::fs::read_to_string(self.dir.join("sessions.log")).unwrap_or_default();
            let v: Vec<serde_json::Value> = text
                .lines()
                .filter_map(|l| serde_json::from_str(l).ok())
                .collect();
            if v.len() >= at_least || Instant::now() > deadline {
                return v;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}
