//! TLS client configuration: rustls with the ring provider passed explicitly (never relying on a
//! process default, whose absence makes wss panic at run time), the platform trust store with a
//! webpki-roots fallback, extra PEM roots, and optional SPKI SHA-256 pinning.

use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, OtherError, RootCertStore,
    SignatureScheme,
};

use crate::engine::ConfigError;

fn ring() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn invalid(field: &'static str, problem: String) -> ConfigError {
    ConfigError::Invalid { field, problem }
}

/// Build the client TLS configuration. `pins` are hex SHA-256 digests of the server's
/// SubjectPublicKeyInfo; any one matching accepts the certificate (after the normal checks).
/// Sockets without extra roots or pins share one configuration: loading the trust store costs
/// more memory than an idle socket otherwise needs.
pub fn client_config(
    extra_roots_pem: &[String],
    pins: &[String],
) -> Result<Arc<ClientConfig>, ConfigError> {
    static DEFAULT: std::sync::OnceLock<Arc<ClientConfig>> = std::sync::OnceLock::new();
    if extra_roots_pem.is_empty() && pins.is_empty() {
        if let Some(shared) = DEFAULT.get() {
            return Ok(Arc::clone(shared));
        }
        let built = build(&[], &[])?;
        return Ok(Arc::clone(DEFAULT.get_or_init(|| built)));
    }
    build(extra_roots_pem, pins)
}

fn build(extra_roots_pem: &[String], pins: &[String]) -> Result<Arc<ClientConfig>, ConfigError> {
    let mut extra_roots = Vec::new();
    for pem in extra_roots_pem {
        let certs = CertificateDer::pem_slice_iter(pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| {
                invalid(
                    "extra_root_certs_pem",
                    format!("is not a PEM certificate: {e}"),
                )
            })?;
        if certs.is_empty() {
            return Err(invalid(
                "extra_root_certs_pem",
                "contains no -----BEGIN CERTIFICATE----- block".into(),
            ));
        }
        extra_roots.extend(certs);
    }
    let pins = pins
        .iter()
        .map(|pin| parse_pin(pin))
        .collect::<Result<Vec<_>, _>>()?;
    let mut verifier = trust_store(extra_roots)?;
    if !pins.is_empty() {
        verifier = Arc::new(PinningVerifier {
            inner: verifier,
            pins,
        });
    }
    let config = ClientConfig::builder_with_provider(ring())
        .with_safe_default_protocol_versions()
        .map_err(|e| invalid("tls", e.to_string()))?
        .dangerous() // only to plug in the verifier chain above, which does the full checks
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// The platform verifier (OS trust store plus extra roots), or webpki-roots plus extra roots
/// where the platform offers none (a container without CA certificates).
fn trust_store(
    extra_roots: Vec<CertificateDer<'static>>,
) -> Result<Arc<dyn ServerCertVerifier>, ConfigError> {
    #[cfg(not(target_os = "android"))]
    let platform =
        rustls_platform_verifier::Verifier::new_with_extra_roots(extra_roots.clone(), ring());
    #[cfg(target_os = "android")]
    let platform = if extra_roots.is_empty() {
        rustls_platform_verifier::Verifier::new(ring())
    } else {
        Err(rustls::Error::General(
            "extra roots use the bundled store on Android".into(),
        ))
    };
    match platform {
        Ok(verifier) => Ok(Arc::new(verifier)),
        Err(err) => {
            log::info!("platform trust store unavailable ({err}); using the bundled webpki roots");
            let mut roots = RootCertStore::empty();
            roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
            for cert in extra_roots {
                roots.add(cert).map_err(|e| {
                    invalid(
                        "extra_root_certs_pem",
                        format!("holds an unusable certificate: {e}"),
                    )
                })?;
            }
            let verifier = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), ring())
                .build()
                .map_err(|e| invalid("tls", e.to_string()))?;
            Ok(verifier)
        }
    }
}

fn parse_pin(pin: &str) -> Result<[u8; 32], ConfigError> {
    let hex = pin.trim().trim_start_matches("sha256:").replace(':', "");
    let bad = || {
        invalid(
            "pinned_spki_sha256",
            format!(
                "{pin:?} is not 64 hex digits; compute it with `openssl x509 -in cert.pem -pubkey -noout | openssl pkey -pubin -outform der | openssl dgst -sha256`"
            ),
        )
    };
    if hex.len() != 64 || !hex.is_ascii() {
        return Err(bad());
    }
    let mut digest = [0u8; 32];
    for (i, byte) in digest.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).map_err(|_| bad())?;
    }
    Ok(digest)
}

/// SHA-256 of a certificate's SubjectPublicKeyInfo (DER), hex-encoded: the pin format.
pub fn spki_sha256_hex(cert_der: &[u8]) -> Option<String> {
    let cert = CertificateDer::from(cert_der);
    spki_sha256(&cert).map(|digest| digest.iter().map(|b| format!("{b:02x}")).collect())
}

fn spki_sha256(cert: &CertificateDer<'_>) -> Option<[u8; 32]> {
    let parsed = webpki::EndEntityCert::try_from(cert).ok()?;
    let digest = ring::digest::digest(
        &ring::digest::SHA256,
        parsed.subject_public_key_info().as_ref(),
    );
    digest.as_ref().try_into().ok()
}

/// The pin failure, carried inside rustls's `CertificateError::Other`.
#[derive(Debug)]
pub struct PinMismatch {
    presented: String,
}

impl std::fmt::Display for PinMismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "certificate pin mismatch: the server's key (SPKI SHA-256 {}) is not one of the pinned keys",
            self.presented
        )
    }
}

impl std::error::Error for PinMismatch {}

/// Runs the normal checks, then requires the leaf's key to be pinned.
#[derive(Debug)]
struct PinningVerifier {
    inner: Arc<dyn ServerCertVerifier>,
    pins: Vec<[u8; 32]>,
}

impl ServerCertVerifier for PinningVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let verified =
            self.inner
                .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)?;
        let presented = spki_sha256(end_entity).ok_or(rustls::Error::InvalidCertificate(
            CertificateError::BadEncoding,
        ))?;
        if self.pins.contains(&presented) {
            return Ok(verified);
        }
        let presented = presented.iter().map(|b| format!("{b:02x}")).collect();
        Err(rustls::Error::InvalidCertificate(CertificateError::Other(
            OtherError(Arc::new(PinMismatch { presented })),
        )))
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// Which TLS check failed, in words an app developer can act on.
pub fn describe(err: &rustls::Error) -> String {
    match err {
        rustls::Error::InvalidCertificate(cert) => match cert {
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
                format!("the server's certificate is not valid for this host name ({cert}); connect with a name the certificate lists")
            }
            CertificateError::UnknownIssuer => {
                "the server's certificate is signed by an unknown authority; add its CA (PEM) to extra_root_certs_pem".into()
            }
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => format!("the server's certificate has expired ({cert})"),
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                format!("the server's certificate is not valid yet ({cert}); check the device clock")
            }
            CertificateError::Other(other) => other.0.to_string(),
            other => format!("the server's certificate was rejected: {other}"),
        },
        rustls::Error::AlertReceived(alert) => format!("the server aborted the TLS handshake with alert {alert:?}"),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pins_are_hex_sha256() {
        let hex = "ab".repeat(32);
        assert_eq!(parse_pin(&hex).unwrap(), [0xab; 32]);
        assert_eq!(
            parse_pin(&format!("sha256:{}", "AB:".repeat(31) + "AB")).unwrap(),
            [0xab; 32]
        );
        let err = parse_pin("abc").unwrap_err().to_string();
        assert!(
            err.contains("pinned_spki_sha256") && err.contains("openssl"),
            "{err}"
        );
        assert!(parse_pin(&"zz".repeat(32)).is_err());
    }

    #[test]
    fn bad_pem_is_a_config_error() {
        let err = client_config(&["not pem".into()], &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("extra_root_certs_pem"), "{err}");
    }

    #[test]
    fn default_config_builds_without_a_process_provider() {
        assert!(client_config(&[], &[]).is_ok());
    }
}
