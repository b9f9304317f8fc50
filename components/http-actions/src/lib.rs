//! The http-actions component: `scheduler:executor/executor` over the socket and ip-pool
//! imports. The HTTP logic is `http-core`; this file adapts types and holds the one client
//! (and so the keep-alive pool) of the instance.

#![cfg_attr(target_arch = "wasm32", no_std)]

extern crate alloc;

mod net;
mod ws;
use http_core::params;

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::net::SocketAddr;

use guest_rt::Global;
use net_text::Quoted;

use http_core::{Client, HttpError, Method, Phase, Prepared};
use socket_api::ip_pool;

wit_bindgen::generate!({
    path: ["../../wit", "../../wit/executor"],
    world: "scheduler:executor/http-actions-websocket",
    with: {
        "scheduler:core-libs/socket@0.1.0": socket_api::raw,
        "scheduler:core-libs/ip-pool@0.1.0": socket_api::ip_pool,
        "wasi:io/error@0.2.12": wasip2::io::error,
        "wasi:io/poll@0.2.12": wasip2::io::poll,
        "wasi:io/streams@0.2.12": wasip2::io::streams,
    },
});

use exports::scheduler::executor::executor::{
    Action, ActionError, Cookie, ExportSource, Exported, Guest, Header, HttpMethod, Outcome,
    ParamError, TimeoutPhase, Timings, TlsFailure, TlsReason,
};

static CLIENT: Global<Client<net::SocketNet>> = Global::new(|| Client::new(net::SocketNet));

/// The last action as parsed and prepared, with what it was parsed from (method, id and
/// `with-params`): a workflow runs the same actions again and again, and parsing the same text
/// gives the same parameters and the same request.
static LAST: Global<Option<(Method, String, String, Ready)>> = Global::new(|| None);

/// An action's parameters with its request checked and encoded.
struct Ready {
    prepared: Prepared,
    pool: Option<params::PoolSource>,
    discard_body: bool,
    discard_headers: bool,
}

fn ready(id: &str, m: Method, with: &str) -> Result<Ready, ActionError> {
    let p = params::parse(id, m, with).map_err(|e| {
        ActionError::InvalidParams(ParamError {
            field: e.field,
            message: e.message,
        })
    })?;
    Ok(Ready {
        prepared: Prepared::new(p.request).map_err(action_error)?,
        pool: p.pool,
        discard_body: p.discard_body,
        discard_headers: p.discard_headers,
    })
}

/// The text of the last source address reported, and the address: a user's requests mostly
/// leave from the same one.
static SOURCE: Global<Option<(SocketAddr, String)>> = Global::new(|| None);

/// Received fields as the interface's headers.
pub(crate) fn wit_headers(fields: &http_core::Fields) -> Vec<Header> {
    fields
        .iter()
        .map(|(name, value)| Header {
            name: name.into(),
            value: value.into(),
        })
        .collect()
}

pub(crate) fn source_text(addr: SocketAddr) -> String {
    let mut last = SOURCE.get();
    match &*last {
        Some((a, text)) if *a == addr => text.clone(),
        _ => {
            let text = net_text::format_socket_addr(addr);
            *last = Some((addr, text.clone()));
            text
        }
    }
}

fn method(m: HttpMethod) -> Method {
    match m {
        HttpMethod::Get => Method::Get,
        HttpMethod::Post => Method::Post,
        HttpMethod::Put => Method::Put,
        HttpMethod::Delete => Method::Delete,
        HttpMethod::Patch => Method::Patch,
        HttpMethod::Head => Method::Head,
        HttpMethod::Options => Method::Options,
    }
}

pub(crate) fn action_error(e: HttpError) -> ActionError {
    match e {
        HttpError::InvalidUrl(m) | HttpError::UnsupportedScheme(m) => {
            ActionError::InvalidParams(ParamError {
                field: "url".into(),
                message: m,
            })
        }
        HttpError::InvalidHeader(m) => ActionError::InvalidParams(ParamError {
            field: "headers".into(),
            message: m,
        }),
        HttpError::Dns(m) => ActionError::Dns(m),
        HttpError::Connect(m) => ActionError::Connect(m),
        HttpError::AccessDenied(m) => ActionError::AccessDenied(m),
        HttpError::Timeout(p) => ActionError::Timeout(match p {
            Phase::Dns => TimeoutPhase::Dns,
            Phase::Connect => TimeoutPhase::Connect,
            Phase::Tls => TimeoutPhase::Tls,
            Phase::FirstByte => TimeoutPhase::FirstByte,
            Phase::BetweenBytes => TimeoutPhase::BetweenBytes,
            Phase::Total => TimeoutPhase::Total,
        }),
        HttpError::Protocol(m) => ActionError::Protocol(m),
        HttpError::TooLarge(m) => ActionError::TooLarge(m),
        HttpError::RedirectLoop(m) => ActionError::RedirectLoop(m),
        HttpError::TooManyRedirects(n) => ActionError::TooManyRedirects(n),
        HttpError::BadRedirect(m) => ActionError::BadRedirect(m),
        HttpError::Proxy(m) => ActionError::Proxy(m),
        HttpError::Io(m) => ActionError::Io(m),
        HttpError::Tls(reason, message) => ActionError::Tls(TlsFailure {
            reason: tls_reason(reason),
            message,
        }),
    }
}

fn tls_reason(r: http_core::TlsReason) -> TlsReason {
    use http_core::TlsReason as R;
    match r {
        R::UnknownIssuer => TlsReason::UnknownIssuer,
        R::NameMismatch => TlsReason::NameMismatch,
        R::Expired => TlsReason::Expired,
        R::NotYetValid => TlsReason::NotYetValid,
        R::BadCertificate => TlsReason::BadCertificate,
        R::HandshakeFailure => TlsReason::HandshakeFailure,
        R::ProtocolVersion => TlsReason::ProtocolVersion,
        R::CertificateRequired => TlsReason::CertificateRequired,
        R::Unsupported => TlsReason::Unsupported,
        R::Other => TlsReason::Other,
    }
}

fn resource_type(s: &str) -> ip_pool::ResourceType {
    match s {
        "vm" => ip_pool::ResourceType::Vm,
        "container" => ip_pool::ResourceType::Container,
        "pod" => ip_pool::ResourceType::Pod,
        other => ip_pool::ResourceType::Custom(other.to_string()),
    }
}

fn export_value(
    resp: &http_core::Response,
    name: &str,
    source: &ExportSource,
) -> Result<String, ActionError> {
    let failed = |message: String| {
        ActionError::ExportFailed(ParamError {
            field: name.to_string(),
            message,
        })
    };
    match source {
        ExportSource::StatusCode => Ok(resp.status.to_string()),
        ExportSource::Header(h) => resp
            .header(h)
            .map(str::to_string)
            .ok_or_else(|| failed(format!("no header {h}"))),
        ExportSource::Body => Ok(String::from_utf8_lossy(&resp.body).into_owned()),
        ExportSource::JsonPointer(p) => {
            let v = http_core::json::parse_slice(&resp.body)
                .map_err(|e| failed(format!("body is not JSON: {e}")))?;
            match v.pointer(p) {
                Some(http_core::json::Value::String(s)) => Ok(s.clone()),
                Some(other) => Ok(other.to_string()),
                None => Err(failed(format!("nothing at {p}"))),
            }
        }
    }
}

fn cookie_out(c: &http_core::cookies::Cookie) -> Cookie {
    Cookie {
        name: c.name.clone(),
        value: c.value.clone(),
        domain: c.domain.clone(),
        host_only: c.host_only,
        path: c.path.clone(),
        secure: c.secure,
        http_only: c.http_only,
        expires: c.expires,
    }
}

fn cookie_in(c: Cookie) -> http_core::cookies::Cookie {
    http_core::cookies::Cookie {
        name: c.name,
        value: c.value,
        domain: c.domain.trim_start_matches('.').to_ascii_lowercase(),
        host_only: c.host_only,
        path: if c.path.starts_with('/') {
            c.path
        } else {
            "/".into()
        },
        secure: c.secure,
        http_only: c.http_only,
        expires: c.expires,
    }
}

pub(crate) struct Component;
export!(Component);

/// A body the caller streams: read as it is sent.
struct StreamBody(wasip2::io::streams::InputStream);

impl http_core::BodySource for StreamBody {
    fn read(&mut self, max: usize) -> Result<Vec<u8>, String> {
        use wasip2::io::streams::StreamError;
        match self.0.blocking_read(max as u64) {
            Ok(bytes) => Ok(bytes),
            Err(StreamError::Closed) => Ok(Vec::new()),
            Err(StreamError::LastOperationFailed(e)) => Err(e.to_debug_string()),
        }
    }
}

/// The parameters of an action whose body is streamed: never cached (the length may differ).
fn ready_streamed(action: &Action, m: Method, len: u64) -> Result<Ready, ActionError> {
    let p = params::parse(&action.id, m, &action.with_params).map_err(|e| {
        ActionError::InvalidParams(ParamError {
            field: e.field,
            message: e.message,
        })
    })?;
    if !p.request.body.is_empty() {
        return Err(ActionError::InvalidParams(ParamError {
            field: "body".into(),
            message: "an action with a streamed body has no body of its own".into(),
        }));
    }
    let mut request = p.request;
    request.streamed_len = len;
    Ok(Ready {
        prepared: Prepared::new(request).map_err(action_error)?,
        pool: p.pool,
        discard_body: p.discard_body,
        discard_headers: p.discard_headers,
    })
}

/// An address from the action's pool for the request, if it names one: bound, and returned
/// with what releasing it needs when it goes back after the action.
type Lease = (String, String, u64, core::net::IpAddr);

fn lease(params: &mut Ready) -> Result<Option<Lease>, ActionError> {
    let Some(src) = &params.pool else {
        return Ok(None);
    };
    let owner = ip_pool::Owner {
        tenant: src.tenant.clone(),
        resource: src.resource.clone(),
        resource_type: resource_type(&src.resource_type),
    };
    let binding = ip_pool::allocate(&src.pool, &owner).map_err(ActionError::Pool)?;
    let ip = net_text::parse_ip(&binding.ip)
        .ok_or_else(|| ActionError::Io(format!("pool returned {}", Quoted(&binding.ip))))?;
    params.prepared.set_bind_ip(Some(ip));
    Ok(src
        .release_after
        .then(|| (src.pool.clone(), binding.ip, binding.generation, ip)))
}

/// Run a ready action (its body streamed from `body` if given) and report its outcome.
fn run(
    action: &Action,
    params: &mut Ready,
    body: Option<StreamBody>,
) -> Result<Outcome, ActionError> {
    let lease = lease(params)?;
    // A discarded body is only counted, unless an export reads it.
    let reads_body = action
        .exports
        .iter()
        .any(|e| matches!(e.source, ExportSource::Body | ExportSource::JsonPointer(_)));
    params
        .prepared
        .set_keep_body(!params.discard_body || reads_body);
    let result = match body {
        None => CLIENT.get().execute_prepared(&params.prepared),
        Some(b) => CLIENT
            .get()
            .execute_with_body(&params.prepared, alloc::boxed::Box::new(b)),
    };
    if let Some((pool, text, generation, ip)) = lease {
        // The address goes back to the pool; so do the connections bound to it (and only
        // those: other sources keep their keep-alive connections).
        CLIENT.get().close_idle_from(ip);
        let _ = ip_pool::release(&pool, &text, generation);
    }
    outcome(action, params, result.map_err(action_error)?)
}

fn outcome(
    action: &Action,
    params: &Ready,
    resp: http_core::Response,
) -> Result<Outcome, ActionError> {
    let exports = action
        .exports
        .iter()
        .map(|spec| {
            export_value(&resp, &spec.name, &spec.source).map(|value| Exported {
                name: spec.name.clone(),
                value,
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let headers = |fields: &http_core::Fields| {
        if params.discard_headers {
            Vec::new()
        } else {
            wit_headers(fields)
        }
    };
    let body_length = resp.body_len;
    Ok(Outcome {
        status: resp.status,
        reason: resp.reason,
        headers: headers(&resp.headers),
        trailers: headers(&resp.trailers),
        body: if params.discard_body {
            Vec::new()
        } else {
            resp.body
        },
        body_length,
        timings: Timings {
            dns_us: resp.timings.dns_us,
            connect_us: resp.timings.connect_us,
            tls_us: resp.timings.tls_us,
            first_byte_us: resp.timings.first_byte_us,
            total_us: resp.timings.total_us,
        },
        bytes_sent: resp.bytes_sent,
        bytes_received: resp.bytes_received,
        source_address: resp.source.map(source_text),
        attempts: resp.attempts,
        redirects: resp.redirects,
        final_url: resp.final_url,
        reused_connection: resp.reused,
        exports,
    })
}

impl Guest for Component {
    fn execute_action(action: Action) -> Result<Outcome, ActionError> {
        let m = method(action.call);
        let mut last = LAST.get();
        let params = match &mut *last {
            Some((lm, id, with, r))
                if *lm == m && *id == action.id && *with == action.with_params =>
            {
                r
            }
            slot => {
                let r = ready(&action.id, m, &action.with_params)?;
                &mut slot
                    .insert((m, action.id.clone(), action.with_params.clone(), r))
                    .3
            }
        };
        run(&action, params, None)
    }

    fn execute_action_with_body(
        action: Action,
        body: wasip2::io::streams::InputStream,
        body_length: u64,
    ) -> Result<Outcome, ActionError> {
        let mut params = ready_streamed(&action, method(action.call), body_length)?;
        run(&action, &mut params, Some(StreamBody(body)))
    }

    fn close_idle() {
        CLIENT.get().close_idle();
    }

    fn cookies() -> Vec<Cookie> {
        CLIENT.get().jar.cookies().iter().map(cookie_out).collect()
    }

    fn add_cookies(cookies: Vec<Cookie>) {
        let mut client = CLIENT.get();
        let now = {
            use http_core::Net as _;
            client.net.wall_ms() / 1000
        };
        for c in cookies {
            client.jar.add(cookie_in(c), now);
        }
    }
}
