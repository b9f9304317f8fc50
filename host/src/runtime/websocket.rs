//! The artifact's WebSocket sessions (`scheduler:executor/websocket`), called in a user's
//! instance: so from its source address, through its policy and TLS.

use super::{Instance, exec, fail};

pub mod bindings {
    wasmtime::component::bindgen!({
        path: ["../wit", "../wit/executor"],
        world: "scheduler:executor/scheduler-executor-websocket",
        imports: { default: async },
        exports: { default: async },
        with: { "wasi:io": wasmtime_wasi::p2::bindings::io },
    });
}

use bindings::exports::scheduler::executor::executor as wexec;
pub use bindings::exports::scheduler::executor::websocket as ws;

type Called<T> = Result<Result<T, ws::WsError>, String>;

/// A session failure's short name, for reports: `ws-handshake(404)`, `ws-closed(1011)`,
/// `ws-timeout`; an opening failure is named as an HTTP action's is.
pub fn error_kind(e: &ws::WsError) -> String {
    use ws::WsError as E;
    match e {
        E::Open(a) => super::error_kind(&action_error(a)),
        E::Handshake((status, _)) => format!("ws-handshake({status})"),
        E::Protocol(_) => "ws-protocol".into(),
        E::TooLarge(_) => "ws-too-large".into(),
        E::Timeout => "ws-timeout".into(),
        E::Closed(c) => match c.code {
            Some(code) => format!("ws-closed({code})"),
            None => "ws-closed".into(),
        },
        E::Io(_) => "ws-io".into(),
        E::NoSession => "ws-no-session".into(),
    }
}

/// What a session failure says.
pub fn error_text(e: &ws::WsError) -> String {
    use ws::WsError as E;
    match e {
        E::Open(a) => super::error_text(&action_error(a)),
        E::Handshake((_, m)) | E::Protocol(m) | E::Io(m) => m.clone(),
        E::TooLarge(n) => format!("a message of {n} bytes, over max_message"),
        E::Timeout => "no message in time".into(),
        E::Closed(c) => format!(
            "closed by the server ({}{}{})",
            c.code.map_or("no code".into(), |c| c.to_string()),
            if c.reason.is_empty() { "" } else { ": " },
            c.reason
        ),
        E::NoSession => "no such session (it ended)".into(),
    }
}

/// The same error as the executor interface's type (the two bindings each have their own).
fn action_error(a: &wexec::ActionError) -> exec::ActionError {
    use exec::ActionError as E;
    use wexec::ActionError as W;
    let param = |p: &wexec::ParamError| exec::ParamError {
        field: p.field.clone(),
        message: p.message.clone(),
    };
    match a {
        W::InvalidParams(p) => E::InvalidParams(param(p)),
        W::ExportFailed(p) => E::ExportFailed(param(p)),
        W::Dns(m) => E::Dns(m.clone()),
        W::Connect(m) => E::Connect(m.clone()),
        W::Timeout(p) => E::Timeout(timeout_phase(*p)),
        W::Protocol(m) => E::Protocol(m.clone()),
        W::TooLarge(m) => E::TooLarge(m.clone()),
        W::AccessDenied(m) => E::AccessDenied(m.clone()),
        // Sessions take no pool parameter: never sent; shown as what it says.
        W::Pool(p) => E::Io(format!("{p:?}")),
        W::RedirectLoop(m) => E::RedirectLoop(m.clone()),
        W::TooManyRedirects(n) => E::TooManyRedirects(*n),
        W::BadRedirect(m) => E::BadRedirect(m.clone()),
        W::Io(m) => E::Io(m.clone()),
        W::Proxy(m) => E::Proxy(m.clone()),
        W::Tls(t) => E::Tls(exec::TlsFailure {
            reason: tls_reason(t.reason),
            message: t.message.clone(),
        }),
    }
}

fn timeout_phase(p: wexec::TimeoutPhase) -> exec::TimeoutPhase {
    use exec::TimeoutPhase as E;
    use wexec::TimeoutPhase as W;
    match p {
        W::Dns => E::Dns,
        W::Connect => E::Connect,
        W::Tls => E::Tls,
        W::FirstByte => E::FirstByte,
        W::BetweenBytes => E::BetweenBytes,
        W::Total => E::Total,
    }
}

fn tls_reason(r: wexec::TlsReason) -> exec::TlsReason {
    use exec::TlsReason as E;
    use wexec::TlsReason as W;
    match r {
        W::UnknownIssuer => E::UnknownIssuer,
        W::NameMismatch => E::NameMismatch,
        W::Expired => E::Expired,
        W::NotYetValid => E::NotYetValid,
        W::BadCertificate => E::BadCertificate,
        W::HandshakeFailure => E::HandshakeFailure,
        W::ProtocolVersion => E::ProtocolVersion,
        W::CertificateRequired => E::CertificateRequired,
        W::Unsupported => E::Unsupported,
        W::Other => E::Other,
    }
}

impl Instance {
    fn websocket(&self) -> Result<&ws::Guest, String> {
        match &self.websocket {
            Some(w) => Ok(w.scheduler_executor_websocket()),
            None => {
                Err("this artifact has no WebSocket sessions (scheduler:executor/websocket)".into())
            }
        }
    }

    pub async fn ws_open(&mut self, params: &str) -> Called<ws::Opened> {
        let g = self.websocket()?.clone();
        g.call_open(&mut self.store, params)
            .await
            .map_err(fail("websocket open trapped"))
    }

    pub async fn ws_send(&mut self, session: u32, m: &ws::Message) -> Called<()> {
        let g = self.websocket()?.clone();
        g.call_send(&mut self.store, session, m)
            .await
            .map_err(fail("websocket send trapped"))
    }

    pub async fn ws_receive(&mut self, session: u32, timeout_ms: u64) -> Called<ws::Message> {
        let g = self.websocket()?.clone();
        g.call_receive(&mut self.store, session, timeout_ms)
            .await
            .map_err(fail("websocket receive trapped"))
    }

    pub async fn ws_ping(&mut self, session: u32, payload: &[u8], timeout_ms: u64) -> Called<()> {
        let g = self.websocket()?.clone();
        g.call_ping(&mut self.store, session, payload, timeout_ms)
            .await
            .map_err(fail("websocket ping trapped"))
    }

    pub async fn ws_close(
        &mut self,
        session: u32,
        code: u16,
        reason: &str,
        timeout_ms: u64,
    ) -> Called<ws::CloseInfo> {
        let g = self.websocket()?.clone();
        g.call_close(&mut self.store, session, code, reason, timeout_ms)
            .await
            .map_err(fail("websocket close trapped"))
    }

    /// A session's counters, then forget it (its connection closed if still open).
    pub async fn ws_finish(&mut self, session: u32) -> Result<Option<ws::Traffic>, String> {
        let g = self.websocket()?.clone();
        let c = g
            .call_counters(&mut self.store, session)
            .await
            .map_err(fail("websocket counters trapped"))?;
        g.call_forget(&mut self.store, session)
            .await
            .map_err(fail("websocket forget trapped"))?;
        Ok(c)
    }

    /// A session's counters so far.
    pub async fn ws_counters(&mut self, session: u32) -> Result<Option<ws::Traffic>, String> {
        let g = self.websocket()?.clone();
        g.call_counters(&mut self.store, session)
            .await
            .map_err(fail("websocket counters trapped"))
    }
}
