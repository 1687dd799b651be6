//! A certificate as carried in a signature block or given as a trust
//! anchor: kept with the DER it arrived as, so that signatures over it are
//! checked on the received bytes.

use cms::signed_data::SignerIdentifier;
use der::Encode;
use rsa::pkcs8::DecodePublicKey;
use rsa::RsaPublicKey;
use x509_cert::Certificate;

use super::error::SignatureError;

/// A certificate with the DER it arrived as.
#[derive(Debug, Clone)]
pub(crate) struct RawCert {
    pub der: Vec<u8>,
    pub cert: Certificate,
}

impl RawCert {
    /// Does this certificate carry the key a SignerIdentifier names?
    pub(crate) fn matches(&self, sid: &SignerIdentifier) -> bool {
        let tbs = &self.cert.tbs_certificate;
        match sid {
            SignerIdentifier::IssuerAndSerialNumber(ias) => tbs.issuer == ias.issuer && tbs.serial_number == ias.serial_number,
            SignerIdentifier::SubjectKeyIdentifier(ski) => {
                tbs.get::<x509_cert::ext::pkix::SubjectKeyIdentifier>().ok().flatten().is_some_and(|(_, k)| k.0 == ski.0)
            }
        }
    }
}

/// The RSA public key of a certificate (E.5: signatures are RSA).
pub(crate) fn rsa_key(cert: &Certificate) -> Result<RsaPublicKey, SignatureError> {
    let spki = cert.tbs_certificate.subject_public_key_info.to_der()?;
    RsaPublicKey::from_public_key_der(&spki).map_err(|e| SignatureError::BadKey(e.to_string()))
}
