//! How a server's certificate is checked: by webpki against the roots (the platform's, the
//! bundled web roots and the CA files given), taking also what curl (OpenSSL) takes of a CA
//! file; or not at all (`insecure`).

use std::sync::{Arc, OnceLock};

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, SignatureScheme};

/// webpki's verification, and a server certificate that is itself one of the CA files'
/// certificates, trusted as given, as curl (OpenSSL) trusts it: the self-signed certificate
/// `openssl req -x509` makes is a CA by its basic constraints, which webpki refuses as a
/// server's (`CaUsedAsEndEntity`) even when it is the very certificate given as `--cacert`.
/// Such a certificate must still be valid now, for the server's name, and for a server (by
/// its extended key usage, when it has one).
///
/// webpki's verifier is made at the first certificate to check: its roots include the
/// platform's, and reading those (a stat and a parse of each file under `/etc/ssl/certs`) was
/// over a third of the CPU of a plain-http `scheduler exec` (27.5 against 16.8 ms), which
/// never needs them.
pub(crate) struct WebPkiOrGiven {
    webpki: OnceLock<Result<Arc<WebPkiServerVerifier>, String>>,
    make: Box<MakeVerifier>,
    given: Vec<CertificateDer<'static>>,
    /// The signature algorithms, as webpki's verifier has them (its roots are not needed).
    supported: WebPkiSupportedAlgorithms,
}

/// Makes webpki's verifier, once, when a certificate is first checked.
pub(crate) type MakeVerifier = dyn Fn() -> Result<Arc<WebPkiServerVerifier>, String> + Send + Sync;

impl WebPkiOrGiven {
    pub(crate) fn new(
        make: Box<MakeVerifier>,
        given: Vec<CertificateDer<'static>>,
        supported: WebPkiSupportedAlgorithms,
    ) -> WebPkiOrGiven {
        WebPkiOrGiven {
            webpki: OnceLock::new(),
            make,
            given,
            supported,
        }
    }

    fn webpki(&self) -> Result<&WebPkiServerVerifier, rustls::Error> {
        let made = self.webpki.get_or_init(|| (self.make)());
        made.as_deref()
            .map_err(|e| rustls::Error::General(e.clone()))
    }
}

impl std::fmt::Debug for WebPkiOrGiven {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebPkiOrGiven")
            .field("webpki", &self.webpki.get())
            .field("given", &self.given.len())
            .finish()
    }
}

fn refused(e: CertificateError) -> rustls::Error {
    rustls::Error::InvalidCertificate(e)
}

/// A certificate trusted as given: valid at `now`, for `name`, and for a server.
fn check_given(
    cert: &CertificateDer<'_>,
    name: &ServerName<'_>,
    now: UnixTime,
) -> Result<(), rustls::Error> {
    let (_, parsed) = x509_parser::parse_x509_certificate(cert)
        .map_err(|_| refused(CertificateError::BadEncoding))?;
    let validity = parsed.validity();
    let now = i64::try_from(now.as_secs()).unwrap_or(i64::MAX);
    if now < validity.not_before.timestamp() {
        return Err(refused(CertificateError::NotValidYet));
    }
    if now > validity.not_after.timestamp() {
        return Err(refused(CertificateError::Expired));
    }
    match parsed.extended_key_usage() {
        Ok(Some(eku)) if !(eku.value.any || eku.value.server_auth) => {
            return Err(refused(CertificateError::InvalidPurpose));
        }
        Ok(_) => {}
        Err(_) => return Err(refused(CertificateError::BadEncoding)),
    }
    webpki::EndEntityCert::try_from(cert)
        .map_err(|_| refused(CertificateError::BadEncoding))?
        .verify_is_valid_for_subject_name(name)
        .map_err(|_| refused(CertificateError::NotValidForName))
}

/// webpki's refusal of a CA certificate as a server's, which it gives before it looks for the
/// issuer.
fn ca_as_end_entity(e: &rustls::Error) -> bool {
    match e {
        rustls::Error::InvalidCertificate(CertificateError::Other(other)) => matches!(
            other.0.downcast_ref::<webpki::Error>(),
            Some(webpki::Error::CaUsedAsEndEntity)
        ),
        _ => false,
    }
}

/// A certificate whose issuer is its subject: self-signed, as curl calls one. Not given as a CA
/// file, its issuer is unknown, which is what curl (OpenSSL) says of it too.
fn self_issued(cert: &CertificateDer<'_>) -> bool {
    x509_parser::parse_x509_certificate(cert)
        .is_ok_and(|(_, c)| c.issuer().as_raw() == c.subject().as_raw())
}

impl ServerCertVerifier for WebPkiOrGiven {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let checked = self.webpki()?.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        );
        match checked {
            Err(_) if self.given.iter().any(|c| c == end_entity) => {
                check_given(end_entity, server_name, now).map(|()| ServerCertVerified::assertion())
            }
            Err(e) if ca_as_end_entity(&e) && self_issued(end_entity) => {
                Err(refused(CertificateError::UnknownIssuer))
            }
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.supported)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.supported)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.supported.supported_schemes()
    }
}

/// `insecure`: any certificate is taken; the handshake's signatures are still verified.
#[derive(Debug)]
pub(crate) struct NoVerification(pub(crate) Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for NoVerification {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tls::pki::{Ca, ExtendedKeyUsagePurpose, Leaf, Validity};
    use rustls::pki_types::pem::PemObject;

    fn der(leaf: &Leaf) -> CertificateDer<'static> {
        CertificateDer::from_pem_slice(leaf.cert_pem.as_bytes()).unwrap()
    }

    /// The verifier `TlsClient::new` makes for these CA files' certificates (no other roots).
    fn verifier(given: &[CertificateDer<'static>]) -> WebPkiOrGiven {
        let mut roots = rustls::RootCertStore::empty();
        for c in given {
            roots.add(c.clone()).unwrap();
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let supported = provider.signature_verification_algorithms;
        let webpki = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
            .build()
            .unwrap();
        WebPkiOrGiven::new(
            Box::new(move || Ok(webpki.clone())),
            given.to_vec(),
            supported,
        )
    }

    fn check(v: &WebPkiOrGiven, cert: &CertificateDer<'_>, name: &str) -> Result<(), String> {
        let name = ServerName::try_from(name.to_string()).unwrap();
        v.verify_server_cert(cert, &[], &name, &[], UnixTime::now())
            .map(|_| ())
            .map_err(|e| format!("{e:?}"))
    }

    #[test]
    fn a_self_signed_ca_given_as_the_ca_file_is_the_servers_certificate() {
        let own = der(&pki_self_signed(Validity::Now, &[]));
        let v = verifier(std::slice::from_ref(&own));
        check(&v, &own, "localhost").unwrap();
        check(&v, &own, "127.0.0.1").unwrap();
        let e = check(&v, &own, "elsewhere.example").unwrap_err();
        assert!(e.contains("NotValidForName"), "{e}");
        // Another CA file: the certificate's issuer (itself) is not known, as curl says.
        let other = Ca::new("other").unwrap();
        let other = CertificateDer::from_pem_slice(other.cert_pem.as_bytes()).unwrap();
        let e = check(&verifier(&[other]), &own, "localhost").unwrap_err();
        assert!(e.contains("UnknownIssuer"), "{e}");
    }

    #[test]
    fn a_given_certificate_must_be_valid_now_and_for_a_server() {
        for (validity, usages, error) in [
            (Validity::Expired, vec![], "Expired"),
            (Validity::NotYet, vec![], "NotValidYet"),
            (
                Validity::Now,
                vec![ExtendedKeyUsagePurpose::ClientAuth],
                "InvalidPurpose",
            ),
        ] {
            let own = der(&pki_self_signed(validity, &usages));
            let e = check(&verifier(std::slice::from_ref(&own)), &own, "localhost").unwrap_err();
            assert!(e.contains(error), "{validity:?} {usages:?}: {e}");
        }
        let own = der(&pki_self_signed(
            Validity::Now,
            &[ExtendedKeyUsagePurpose::ServerAuth],
        ));
        check(&verifier(std::slice::from_ref(&own)), &own, "localhost").unwrap();
    }

    #[test]
    fn a_leaf_of_a_given_ca_is_checked_by_webpki_alone() {
        let ca = Ca::new("issuer").unwrap();
        let leaf = der(&ca.server(&["localhost"], Validity::Now).unwrap());
        let ca = CertificateDer::from_pem_slice(ca.cert_pem.as_bytes()).unwrap();
        let v = verifier(&[ca]);
        check(&v, &leaf, "localhost").unwrap();
        let e = check(&v, &leaf, "elsewhere.example").unwrap_err();
        assert!(e.contains("NotValidForName"), "{e}");
    }

    fn pki_self_signed(validity: Validity, usages: &[ExtendedKeyUsagePurpose]) -> Leaf {
        crate::tls::pki::self_signed(&["localhost", "127.0.0.1"], validity, usages).unwrap()
    }
}
