//! The host's TLS for `wasi:tls` (0.2.0-draft): the configuration of the project's own on
//! rustls with ring (the draft interface carries none); `crate::tls_host` implements the
//! interface with it.
//!
//! - Trust: the platform's roots, the bundled web roots, and CA files; or none checked at all
//!   (`insecure`, which the report states).
//! - A client identity (mTLS), TLS 1.2 and 1.3 with a minimum and a maximum, an SNI override.
//! - Session resumption inside one user's instance: each instance's provider has its own
//!   session store, so no user resumes another's session.
//! - Coalesced writes: wasi:sockets has no TCP_NODELAY, so the client's last handshake flight
//!   is held for the first request, and they leave in one segment instead of waiting out the
//!   peer's delayed ACK (about 40 ms).
//! - Errors name their reason as `[tls:REASON] detail`, which the socket component turns into
//!   its typed `tls-error`.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rustls::client::{Resumption, WebPkiServerVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{
    AlertDescription, CertificateError, ClientConfig, ClientConnection, HandshakeKind,
    RootCertStore,
};

pub use crate::tls_host::{TlsHostView, TlsView, add_to_linker, add_to_linker_copying};
use crate::tls_verify::{NoVerification, WebPkiOrGiven};

/// A TLS protocol version, as scenarios and the command line name them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum TlsVersion {
    Tls12,
    Tls13,
}

impl TlsVersion {
    /// `1.2`, `1.3`, `TLSv1.2`, `tls1.3`...
    pub fn parse(text: &str) -> Option<TlsVersion> {
        let t = text.trim().to_ascii_lowercase();
        let t = t.trim_start_matches("tls").trim_start_matches('v');
        match t {
            "1.2" | "12" => Some(TlsVersion::Tls12),
            "1.3" | "13" => Some(TlsVersion::Tls13),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            TlsVersion::Tls12 => "TLSv1.2",
            TlsVersion::Tls13 => "TLSv1.3",
        }
    }
}

/// What a run's TLS is configured with (files are read by [`TlsClient::new`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TlsSettings {
    /// PEM files of CA certificates trusted beside the platform's and the web's roots.
    pub ca_files: Vec<PathBuf>,
    /// Skip verifying the server's certificate (signatures are still checked).
    pub insecure: bool,
    /// PEM certificate chain and private key for client authentication.
    pub client_identity: Option<(PathBuf, PathBuf)>,
    pub min_version: Option<TlsVersion>,
    pub max_version: Option<TlsVersion>,
    /// The name checked and sent as SNI, whatever host the URL names.
    pub server_name: Option<String>,
}

/// Why [`TlsSettings`] cannot make a client: the part at fault and what went wrong. curl
/// tells a CA file that cannot be used (its exit 77) from a client certificate or key (58) and
/// from the rest (35, as settings no handshake can meet, e.g. a lowest version above the
/// highest).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsSetupError {
    pub fault: TlsFault,
    pub message: String,
}

/// The part of [`TlsSettings`] a [`TlsSetupError`] is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsFault {
    CaFile,
    ClientIdentity,
    Other,
}

impl TlsFault {
    /// An error of this part.
    fn error(self, message: String) -> TlsSetupError {
        TlsSetupError {
            fault: self,
            message,
        }
    }
}

impl TlsSetupError {
    /// The same error with `context` before its message (`tenant a: ...`).
    pub fn within(self, context: &str) -> TlsSetupError {
        TlsSetupError {
            message: format!("{context}: {}", self.message),
            ..self
        }
    }
}

impl std::fmt::Display for TlsSetupError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl From<TlsSetupError> for String {
    fn from(e: TlsSetupError) -> String {
        e.message
    }
}

/// Handshakes counted by what they negotiated.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct TlsCounts {
    /// (version, cipher suite) -> handshakes.
    pub negotiated: BTreeMap<(String, String), u64>,
    /// Handshakes that resumed a session.
    pub resumed: u64,
    pub failed: u64,
}

/// What one handshake negotiated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Negotiated {
    pub version: String,
    pub cipher_suite: String,
    pub resumed: bool,
    /// The protocol the server chose by ALPN (`h2`), if any.
    pub alpn: Option<String>,
}

/// A run's TLS client configuration; [`TlsClient::provider`] makes each instance's provider.
pub struct TlsClient {
    config: Arc<ClientConfig>,
    server_name: Option<String>,
    insecure: bool,
    counts: Arc<Mutex<TlsCounts>>,
}

fn read(path: &Path, what: &str) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("{what} {}: {e}", path.display()))
}

fn certificates(path: &Path, what: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let pem = read(path, what)?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{what} {}: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!(
            "{what} {}: no PEM certificate in it",
            path.display()
        ));
    }
    Ok(certs)
}

/// A client certificate chain and its private key, from PEM files.
fn client_identity(
    cert: &Path,
    key: &Path,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), String> {
    let chain = certificates(cert, "client certificate")?;
    let pem = read(key, "client key")?;
    let key = PrivateKeyDer::from_pem_slice(&pem)
        .map_err(|e| format!("client key {}: {e}", key.display()))?;
    Ok((chain, key))
}

/// webpki's verifier over the bundled web roots, the platform's where there are any (a bad
/// file among them is skipped) and the CA files' certificates.
fn verifier(
    files: &RootCertStore,
    crypto: Arc<rustls::crypto::CryptoProvider>,
) -> Result<Arc<WebPkiServerVerifier>, String> {
    let mut roots = RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    for cert in rustls_native_certs::load_native_certs().certs {
        let _ = roots.add(cert);
    }
    roots.roots.extend(files.roots.iter().cloned());
    WebPkiServerVerifier::builder_with_provider(Arc::new(roots), crypto)
        .build()
        .map_err(|e| format!("TLS: {e}"))
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

impl TlsClient {
    pub fn new(settings: &TlsSettings) -> Result<TlsClient, TlsSetupError> {
        use TlsFault::{CaFile, ClientIdentity, Other};
        let crypto = provider();
        let versions: Vec<&'static rustls::SupportedProtocolVersion> = [
            (TlsVersion::Tls12, &rustls::version::TLS12),
            (TlsVersion::Tls13, &rustls::version::TLS13),
        ]
        .into_iter()
        .filter(|(v, _)| settings.min_version.is_none_or(|min| *v >= min))
        .filter(|(v, _)| settings.max_version.is_none_or(|max| *v <= max))
        .map(|(_, v)| v)
        .collect();
        if versions.is_empty() {
            return Err(Other.error("TLS: min_version is above max_version".into()));
        }
        let builder = ClientConfig::builder_with_provider(crypto.clone())
            .with_protocol_versions(&versions)
            .map_err(|e| Other.error(format!("TLS: {e}")))?;
        // The client identity is read before the CA files, as curl reads them: with both
        // unusable, it is the identity's error (curl's 58).
        let identity = match &settings.client_identity {
            None => None,
            Some((cert, key)) => {
                Some(client_identity(cert, key).map_err(|m| ClientIdentity.error(m))?)
            }
        };
        let builder = if settings.insecure {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(NoVerification(crypto.clone())))
        } else {
            // The CA files are read and checked now (their errors are the setup's); the
            // other roots when a certificate is first checked (`WebPkiOrGiven`).
            let mut files = RootCertStore::empty();
            let mut given = Vec::new();
            for file in &settings.ca_files {
                for cert in certificates(file, "CA file").map_err(|m| CaFile.error(m))? {
                    files
                        .add(cert.clone())
                        .map_err(|e| CaFile.error(format!("CA file {}: {e}", file.display())))?;
                    given.push(cert);
                }
            }
            let supported = crypto.signature_verification_algorithms;
            let make = Box::new(move || verifier(&files, crypto.clone()));
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(WebPkiOrGiven::new(
                    make, given, supported,
                )))
        };
        let config = match identity {
            None => builder.with_no_client_auth(),
            Some((chain, key)) => builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| ClientIdentity.error(format!("client certificate: {e}")))?,
        };
        Ok(TlsClient {
            config: Arc::new(config),
            server_name: settings.server_name.clone(),
            insecure: settings.insecure,
            counts: Arc::default(),
        })
    }

    pub fn insecure(&self) -> bool {
        self.insecure
    }

    /// The rustls configuration (for the host's own clients, e.g. of etcd).
    pub fn config(&self) -> Arc<ClientConfig> {
        self.config.clone()
    }

    /// The handshakes of every instance so far.
    pub fn counts(&self) -> TlsCounts {
        self.counts.lock().map(|c| c.clone()).unwrap_or_default()
    }

    /// One instance's provider: the run's configuration with a session store of its own.
    pub fn provider(&self) -> InstanceTls {
        let mut config = (*self.config).clone();
        config.resumption = Resumption::in_memory_sessions(32);
        InstanceTls {
            config: Arc::new(config),
            alpn: Mutex::new(None),
            server_name: self.server_name.clone(),
            counts: self.counts.clone(),
            last: Arc::default(),
            readers: Default::default(),
        }
    }

    /// One instance's TLS, and the slot its last handshake is written to.
    pub fn context(&self) -> (InstanceTls, Arc<Mutex<Option<Negotiated>>>) {
        let provider = self.provider();
        let last = provider.last.clone();
        (provider, last)
    }
}

/// The TLS of one instance: the run's configuration with a session store of its own.
pub struct InstanceTls {
    config: Arc<ClientConfig>,
    /// The configuration with the ALPN list last offered.
    alpn: Mutex<Option<(Vec<String>, Arc<ClientConfig>)>>,
    server_name: Option<String>,
    pub(crate) counts: Arc<Mutex<TlsCounts>>,
    pub(crate) last: Arc<Mutex<Option<Negotiated>>>,
    /// Its TLS input streams (for reads straight into the guest's memory).
    pub(crate) readers: crate::direct_read::TlsReaders,
}

impl InstanceTls {
    /// A client connection to `server_name` (or the configured override): for a host name it
    /// is checked and sent as SNI; an IP literal is checked and sends none.
    pub(crate) fn client_connection(
        &self,
        server_name: &str,
        alpn: &[String],
    ) -> Result<ClientConnection, String> {
        let name = self.server_name.as_deref().unwrap_or(server_name);
        let domain = ServerName::try_from(name.to_string())
            .map_err(|_| format!("[tls:other] not a valid server name: {name:?}"))?;
        ClientConnection::new(self.config_offering(alpn), domain).map_err(|e| tls_error_text(&e))
    }

    /// The configuration offering `alpn` (the same session store): made once for the last
    /// list asked for, which is nearly always the only one.
    fn config_offering(&self, alpn: &[String]) -> Arc<ClientConfig> {
        if alpn.is_empty() {
            return self.config.clone();
        }
        let mut cached = self.alpn.lock().unwrap_or_else(|e| e.into_inner());
        match &*cached {
            Some((list, config)) if list == alpn => config.clone(),
            _ => {
                let mut config = (*self.config).clone();
                config.alpn_protocols = alpn.iter().map(|p| p.as_bytes().to_vec()).collect();
                let config = Arc::new(config);
                *cached = Some((alpn.to_vec(), config.clone()));
                config
            }
        }
    }
}

/// What a finished handshake negotiated.
pub(crate) fn negotiated(conn: &ClientConnection) -> Negotiated {
    Negotiated {
        version: conn
            .protocol_version()
            .and_then(|v| v.as_str())
            .unwrap_or("unknown")
            .replace('_', "."),
        cipher_suite: conn
            .negotiated_cipher_suite()
            .and_then(|s| s.suite().as_str())
            .unwrap_or("unknown")
            .to_string(),
        resumed: conn.handshake_kind() == Some(HandshakeKind::Resumed),
        alpn: conn
            .alpn_protocol()
            .map(|p| String::from_utf8_lossy(p).into_owned()),
    }
}

/// `[tls:REASON] detail` for a rustls error.
pub(crate) fn tls_error_text(e: &rustls::Error) -> String {
    format!("[tls:{}] {e}", reason(e))
}

/// The reason of a TLS failure as the socket interface names it.
pub fn reason(e: &rustls::Error) -> &'static str {
    use rustls::Error as E;
    match e {
        E::InvalidCertificate(c) => match c {
            CertificateError::UnknownIssuer => "unknown-issuer",
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
                "name-mismatch"
            }
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => "expired",
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                "not-yet-valid"
            }
            _ => "bad-certificate",
        },
        E::AlertReceived(a) => match a {
            AlertDescription::CertificateRequired => "certificate-required",
            AlertDescription::ProtocolVersion => "protocol-version",
            AlertDescription::UnknownCA => "unknown-issuer",
            AlertDescription::BadCertificate
            | AlertDescription::UnsupportedCertificate
            | AlertDescription::CertificateUnknown
            | AlertDescription::CertificateExpired
            | AlertDescription::CertificateRevoked => "bad-certificate",
            _ => "handshake-failure",
        },
        E::PeerIncompatible(p) => {
            let text = format!("{p:?}");
            if text.contains("Tls12") || text.contains("Version") {
                "protocol-version"
            } else {
                "handshake-failure"
            }
        }
        _ => "handshake-failure",
    }
}

/// `[tls:REASON] detail` for an I/O error out of rustls's reader or writer.
pub(crate) fn io_text(e: &io::Error) -> String {
    if let Some(t) = e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
        return format!("[tls:{}] {t}", reason(t));
    }
    match e.kind() {
        io::ErrorKind::UnexpectedEof => {
            "[tls:handshake-failure] the server closed the connection during the handshake".into()
        }
        io::ErrorKind::ConnectionReset => {
            "[tls:handshake-failure] the server reset the connection during the handshake".into()
        }
        _ => format!("[tls:other] {e}"),
    }
}

/// Certificates made on the spot (the demo's HTTPS target, the tests): a CA, and leaves it signs.
pub mod pki {
    pub use rcgen::ExtendedKeyUsagePurpose;
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose,
        date_time_ymd,
    };

    /// A leaf's certificate and key, PEM.
    pub struct Leaf {
        pub cert_pem: String,
        pub key_pem: String,
    }

    impl Leaf {
        /// A rustls server configuration (ring, TLS 1.2 and 1.3) serving this certificate.
        pub fn server_config(&self) -> Result<std::sync::Arc<rustls::ServerConfig>, String> {
            use rustls::pki_types::pem::PemObject;
            use rustls::pki_types::{CertificateDer, PrivateKeyDer};
            let chain = CertificateDer::pem_slice_iter(self.cert_pem.as_bytes())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| e.to_string())?;
            let key = PrivateKeyDer::from_pem_slice(self.key_pem.as_bytes())
                .map_err(|e| e.to_string())?;
            let config = rustls::ServerConfig::builder_with_provider(super::provider())
                .with_safe_default_protocol_versions()
                .map_err(|e| e.to_string())?
                .with_no_client_auth()
                .with_single_cert(chain, key)
                .map_err(|e| e.to_string())?;
            Ok(std::sync::Arc::new(config))
        }
    }

    /// When a leaf is valid.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum Validity {
        Now,
        Expired,
        NotYet,
    }

    pub struct Ca {
        pub cert_pem: String,
        pub key_pem: String,
        issuer: Issuer<'static, KeyPair>,
    }

    fn err(e: rcgen::Error) -> String {
        format!("making a certificate: {e}")
    }

    fn valid(params: &mut CertificateParams, validity: Validity) {
        let years = match validity {
            Validity::Now => return,
            Validity::Expired => (2001, 2002),
            Validity::NotYet => (2090, 2091),
        };
        params.not_before = date_time_ymd(years.0, 1, 1);
        params.not_after = date_time_ymd(years.1, 1, 1);
    }

    /// A key (ECDSA P-256) and the parameters of a certificate for `names` (its first the
    /// common name, `unnamed` without any), valid as `validity` says, for `usages`.
    fn leaf_params(
        names: &[&str],
        unnamed: &str,
        validity: Validity,
        usages: &[ExtendedKeyUsagePurpose],
    ) -> Result<(KeyPair, CertificateParams), String> {
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(err)?;
        let sans: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let mut params = CertificateParams::new(sans).map_err(err)?;
        params.distinguished_name.push(
            DnType::CommonName,
            names.first().copied().unwrap_or(unnamed),
        );
        params.extended_key_usages = usages.to_vec();
        valid(&mut params, validity);
        Ok((key, params))
    }

    /// A self-signed server certificate for `names` that is a CA by its basic constraints and
    /// names no use, as `openssl req -x509` makes one: a server's certificate that is its own
    /// CA file.
    pub fn self_signed(
        names: &[&str],
        validity: Validity,
        usages: &[ExtendedKeyUsagePurpose],
    ) -> Result<Leaf, String> {
        let (key, mut params) = leaf_params(names, "self", validity, usages)?;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let cert = params.self_signed(&key).map_err(err)?;
        Ok(Leaf {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }

    impl Ca {
        /// A self-signed CA (ECDSA P-256) named `name`.
        pub fn new(name: &str) -> Result<Ca, String> {
            let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(err)?;
            let mut params = CertificateParams::new(Vec::<String>::new()).map_err(err)?;
            params.distinguished_name.push(DnType::CommonName, name);
            params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
            let cert = params.self_signed(&key).map_err(err)?;
            Ok(Ca {
                cert_pem: cert.pem(),
                key_pem: key.serialize_pem(),
                issuer: Issuer::new(params, key),
            })
        }

        /// A server certificate for `names` (host names and IP literals).
        pub fn server(&self, names: &[&str], validity: Validity) -> Result<Leaf, String> {
            self.leaf(names, validity, &[ExtendedKeyUsagePurpose::ServerAuth])
        }

        /// A certificate for a server that is its own client too (etcd's JSON gateway calls
        /// its gRPC side with the server's certificate when clients must present one).
        pub fn peer(&self, names: &[&str]) -> Result<Leaf, String> {
            use ExtendedKeyUsagePurpose::{ClientAuth, ServerAuth};
            self.leaf(names, Validity::Now, &[ServerAuth, ClientAuth])
        }

        /// A client certificate (mTLS) whose subject is `name`.
        pub fn client(&self, name: &str) -> Result<Leaf, String> {
            self.leaf(
                &[name],
                Validity::Now,
                &[ExtendedKeyUsagePurpose::ClientAuth],
            )
        }

        fn leaf(
            &self,
            names: &[&str],
            validity: Validity,
            usages: &[ExtendedKeyUsagePurpose],
        ) -> Result<Leaf, String> {
            let (key, params) = leaf_params(names, "leaf", validity, usages)?;
            let cert = params.signed_by(&key, &self.issuer).map_err(err)?;
            Ok(Leaf {
                cert_pem: cert.pem(),
                key_pem: key.serialize_pem(),
            })
        }
    }
}
