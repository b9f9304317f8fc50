//! `scheduler:executor/websocket`: the instance's WebSocket sessions, opened through the
//! instance's client (so from its source address, policy and TLS) and kept until closed.

use alloc::collections::BTreeMap;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use guest_rt::Global;
use http_core::ws::{self, Session, WsError};

use crate::exports::scheduler::executor::executor::{ActionError, ParamError, Timings};
use crate::exports::scheduler::executor::websocket::{
    CloseInfo, Guest, Message, Opened, Traffic, WsError as Error,
};
use crate::net::SocketConn;
use crate::{CLIENT, Component};

/// A session, or what is left of one that ended: its counters, until it is forgotten.
struct Slot {
    session: Option<Session<SocketConn>>,
    counters: ws::Counters,
}

struct Sessions {
    open: BTreeMap<u32, Slot>,
    next: u32,
}

static SESSIONS: Global<Sessions> = Global::new(|| Sessions {
    open: BTreeMap::new(),
    next: 1,
});

fn now_us() -> u64 {
    wasip2::clocks::monotonic_clock::now() / 1000
}

fn deadline(timeout_ms: u64) -> u64 {
    now_us().saturating_add(timeout_ms.min(365 * 24 * 3600 * 1000).saturating_mul(1000))
}

fn error(e: WsError) -> Error {
    match e {
        WsError::Params(field, message) => {
            Error::Open(ActionError::InvalidParams(ParamError { field, message }))
        }
        WsError::Open(e) => Error::Open(crate::action_error(e)),
        WsError::Handshake(status, m) => Error::Handshake((status, m)),
        WsError::Protocol(m) => Error::Protocol(m),
        WsError::BadUtf8 => Error::Protocol("text that is not UTF-8".into()),
        WsError::TooLarge(n) => Error::TooLarge(n),
        WsError::Timeout => Error::Timeout,
        WsError::Closed(code, reason) => Error::Closed(CloseInfo { code, reason }),
        WsError::Io(m) => Error::Io(m),
    }
}

/// Run `f` on session `id`; an error that ends the session closes its connection.
fn with<T>(
    id: u32,
    f: impl FnOnce(&mut Session<SocketConn>) -> Result<T, WsError>,
) -> Result<T, Error> {
    let mut all = SESSIONS.get();
    let Some(slot) = all.open.get_mut(&id) else {
        return Err(Error::NoSession);
    };
    let Some(s) = slot.session.as_mut() else {
        return Err(Error::NoSession);
    };
    let r = f(s);
    slot.counters = s.counters;
    if let Err(e) = &r
        && e.ends_session()
    {
        slot.session = None;
    }
    r.map_err(error)
}

fn timings(t: http_core::Timings) -> Timings {
    Timings {
        dns_us: t.dns_us,
        connect_us: t.connect_us,
        tls_us: t.tls_us,
        first_byte_us: t.first_byte_us,
        total_us: t.total_us,
    }
}

impl Guest for Component {
    fn open(params: String) -> Result<Opened, Error> {
        let p = ws::params::parse(&params).map_err(|e| {
            Error::Open(ActionError::InvalidParams(ParamError {
                field: e.field,
                message: e.message,
            }))
        })?;
        let (session, o) = CLIENT.get().ws_open(&p).map_err(error)?;
        let mut all = SESSIONS.get();
        let id = all.next;
        all.next = all.next.wrapping_add(1).max(1);
        let counters = session.counters;
        all.open.insert(
            id,
            Slot {
                session: Some(session),
                counters,
            },
        );
        Ok(Opened {
            session: id,
            status: o.status,
            headers: crate::wit_headers(&o.headers),
            protocol: o.protocol,
            timings: timings(o.timings),
            source_address: o.source.map(crate::source_text),
            bytes_sent: o.bytes_sent,
            bytes_received: o.bytes_received,
        })
    }

    fn send(session: u32, message: Message) -> Result<(), Error> {
        let m = match message {
            Message::Text(t) => ws::Message::Text(t),
            Message::Binary(b) => ws::Message::Binary(b),
        };
        with(session, |s| s.send(&m))
    }

    fn receive(session: u32, timeout_ms: u64) -> Result<Message, Error> {
        let end = deadline(timeout_ms);
        with(session, |s| s.receive(&now_us, end)).map(|m| match m {
            ws::Message::Text(t) => Message::Text(t),
            ws::Message::Binary(b) => Message::Binary(b),
        })
    }

    fn ping(session: u32, payload: Vec<u8>, timeout_ms: u64) -> Result<(), Error> {
        let end = deadline(timeout_ms);
        with(session, |s| s.ping(&payload, &now_us, end))
    }

    fn close(session: u32, code: u16, reason: String, timeout_ms: u64) -> Result<CloseInfo, Error> {
        let end = deadline(timeout_ms);
        let r = with(session, |s| s.close(code, &reason, &now_us, end));
        // Over whatever the server did (a timeout included): the connection goes.
        if let Some(slot) = SESSIONS.get().open.get_mut(&session) {
            slot.session = None;
        }
        r.map(|(code, reason)| CloseInfo {
            code,
            reason: reason.to_string(),
        })
    }

    fn counters(session: u32) -> Option<Traffic> {
        SESSIONS.get().open.get(&session).map(|slot| {
            let c = slot.counters;
            Traffic {
                messages_sent: c.messages_sent,
                messages_received: c.messages_received,
                bytes_sent: c.bytes_sent,
                bytes_received: c.bytes_received,
            }
        })
    }

    fn forget(session: u32) {
        SESSIONS.get().open.remove(&session);
    }
}
