//! The command's TLS settings (`--cacert`, `--cert`/`--key`, `-k`, the version bounds), and
//! how a file among them that cannot be used fails: as curl fails.

use std::process::ExitCode;

use compose::tls::{TlsClient, TlsSettings};

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
/// used fails with curl's 77, a client certificate or key with its 58 (other settings, with
/// 1). A request that cannot reach TLS (a plain `http:` URL without `-L`; proxies are plain
/// HTTP) never reads them, as with curl, and runs with the defaults.
pub(super) fn runtime_for(args: &ExecArgs, url: &str) -> Result<runtime::Runtime, ExitCode> {
    let settings = tls_of(args);
    let tls = match runtime::Tls::new(&settings, &[]) {
        Ok(tls) => tls,
        Err(_) if !may_use_tls(args, url) => {
            runtime::Tls::new(&TlsSettings::default(), &[]).map_err(|e| failure(args, 1, &e))?
        }
        Err(e) => return Err(failure(args, code_of(&settings), &e)),
    };
    runtime::Runtime::new(2, tls).map_err(|e| failure(args, 1, &e))
}

fn may_use_tls(args: &ExecArgs, url: &str) -> bool {
    args.location
        || url
            .get(..6)
            .is_some_and(|s| s.eq_ignore_ascii_case("https:"))
}

/// curl's code for settings that failed: 77 when the CA files alone fail, 58 when the client
/// identity alone does, 1 otherwise.
fn code_of(settings: &TlsSettings) -> u8 {
    let alone = |s: TlsSettings| TlsClient::new(&s).is_err();
    if alone(TlsSettings {
        ca_files: settings.ca_files.clone(),
        ..TlsSettings::default()
    }) {
        77
    } else if alone(TlsSettings {
        client_identity: settings.client_identity.clone(),
        ..TlsSettings::default()
    }) {
        58
    } else {
        1
    }
}

fn failure(args: &ExecArgs, code: u8, e: &str) -> ExitCode {
    if args.shows_errors() {
        eprintln!("scheduler: ({code}) {e}");
    }
    ExitCode::from(code)
}
