//! The command's TLS settings (`--cacert`, `--cert`/`--key`, `-k`, the version bounds), and
//! how a file among them that cannot be used fails: as curl fails.

use std::process::ExitCode;

use compose::tls::{TlsFault, TlsSettings, TlsSetupError};

use super::ExecArgs;
use crate::runtime;

fn tls_of(args: &ExecArgs) -> TlsSettings {
    TlsSettings {
        ca_files: args.cacert.clone(),
        insecure: args.insecure,
        client_identity: args.cert.clone().zip(args.key.clone()),
        min_version: if args.tls13 {
            Some(compose::tls::TlsVersion::Tls13)
        } else if args.tls12 {
            Some(compose::tls::TlsVersion::Tls12)
        } else {
            None
        },
        max_version: args.tls_max,
        server_name: None,
    }
}

/// The runtime for the request, with the command's TLS settings. A CA file that cannot be
/// used fails with curl's 77, a client certificate or key with its 58 (read first, as curl
/// does), settings no handshake can meet with its 35. A request that cannot reach TLS (a plain `http:` URL without `-L`; proxies are plain
/// HTTP) never reads them, as with curl, and runs with the defaults.
pub(super) fn runtime_for(args: &ExecArgs, url: &str) -> Result<runtime::Runtime, ExitCode> {
    let settings = tls_of(args);
    let tls = match runtime::Tls::new(&settings, &[]) {
        Ok(tls) => tls,
        Err(_) if !may_use_tls(args, url) => runtime::Tls::new(&TlsSettings::default(), &[])
            .map_err(|e| failure(args, 1, &e.message))?,
        Err(e) => return Err(failure(args, code_of(&e), &e.message)),
    };
    runtime::Runtime::new(2, tls).map_err(|e| failure(args, 1, &e))
}

fn may_use_tls(args: &ExecArgs, url: &str) -> bool {
    args.location
        || url
            .get(..6)
            .is_some_and(|s| s.eq_ignore_ascii_case("https:"))
}

/// curl's code for settings that failed: 77 for a CA file, 58 for the client certificate or
/// key, 35 otherwise (curl fails the handshake on them: `--tlsv1.3 --tls-max 1.2`).
fn code_of(e: &TlsSetupError) -> u8 {
    match e.fault {
        TlsFault::CaFile => 77,
        TlsFault::ClientIdentity => 58,
        TlsFault::Other => 35,
    }
}

fn failure(args: &ExecArgs, code: u8, e: &str) -> ExitCode {
    if args.shows_errors() {
        eprintln!("scheduler: ({code}) {e}");
    }
    ExitCode::from(code)
}
