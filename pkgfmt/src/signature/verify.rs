//! Creating and checking one SignerInfo (E.5: SHA-1 digest, RSA PKCS #1
//! v1.5), with or without signed attributes.

use std::time::SystemTime;

use cms::builder::{create_signing_time_attribute, SignerInfoBuilder};
use cms::cert::IssuerAndSerialNumber;
use cms::content_info::CmsVersion;
use cms::signed_data::{EncapsulatedContentInfo, SignerIdentifier, SignerInfo};
use const_oid::db::rfc5911::{ID_CONTENT_TYPE, ID_DATA, ID_MESSAGE_DIGEST};
use const_oid::db::rfc5912::{ID_SHA_1, RSA_ENCRYPTION, SHA_1_WITH_RSA_ENCRYPTION};
use der::asn1::{ObjectIdentifier, OctetString};
use der::{Decode, Encode};
use rsa::pkcs1v15::{Signature, SigningKey, VerifyingKey};
use rsa::pkcs8::DecodePublicKey;
use rsa::RsaPublicKey;
use sha1::Sha1;
use signature::{SignatureEncoding, Signer, Verifier};
use spki::AlgorithmIdentifierOwned;
use x509_cert::builder::Builder;
use x509_cert::Certificate;

use super::block::{sha1, RawSigner, SignatureBlock, SignerSummary};
use super::path::{validate_path, ChainInfo};
use super::{oid_name, SignatureError};

/// Options for [`SignatureBlock::verify`].
#[derive(Debug, Clone, Default)]
pub struct VerifyOptions {
    /// Skip certificate validity-date checks (devices without a clock).
    pub ignore_time: bool,
    /// The time to validate at; `None` means now.
    pub now: Option<SystemTime>,
}

/// The outcome for one signer.
#[derive(Debug, Clone)]
pub struct SignerOutcome {
    /// Position of the SignerInfo in the block.
    pub index: usize,
    pub summary: SignerSummary,
    /// The path to a trust anchor, or why this signer did not validate.
    pub result: Result<ChainInfo, SignatureError>,
}

/// Per-signer results; E.5: "at least one of the signatures must be
/// successfully validated for the recipient to consider the signed package
/// as trusted".
#[derive(Debug, Clone)]
pub struct VerifyReport {
    pub signers: Vec<SignerOutcome>,
}

impl VerifyReport {
    /// The first signer that validated and chains to a trust anchor.
    pub fn trusted(&self) -> Option<&SignerOutcome> {
        self.signers.iter().find(|s| s.result.is_ok())
    }

    pub fn is_trusted(&self) -> bool {
        self.trusted().is_some()
    }

    /// One line per signer explaining the result.
    pub fn explain(&self) -> String {
        if self.signers.is_empty() {
            return "package is unsigned (the signature block has no signers)".into();
        }
        self.signers
            .iter()
            .map(|s| match &s.result {
                Ok(c) => format!("signer #{} ({}): valid, chain {}", s.index, s.summary.subject, c.subjects.join(" <- ")),
                Err(e) => format!("signer #{} ({}): {e}", s.index, s.summary.subject),
            })
            .collect::<Vec<_>>()
            .join("; ")
    }
}

impl SignatureBlock {
    /// Check every signer over `message` (header + command list) and its
    /// certificate path to one of `anchors`.
    pub fn verify(&self, message: &[u8], anchors: &[Certificate], opts: &VerifyOptions) -> VerifyReport {
        let now = opts.now.unwrap_or_else(SystemTime::now);
        let signers = self
            .signers
            .iter()
            .enumerate()
            .map(|(index, s)| SignerOutcome {
                index,
                summary: self.summary(s),
                result: self.verify_one(s, message, anchors, (!opts.ignore_time).then_some(now)),
            })
            .collect();
        VerifyReport { signers }
    }

    fn verify_one(&self, s: &RawSigner, message: &[u8], anchors: &[Certificate], now: Option<SystemTime>) -> Result<ChainInfo, SignatureError> {
        let info = &s.info;
        if info.digest_alg.oid != ID_SHA_1 {
            return Err(SignatureError::DigestNotSha1(oid_name(&info.digest_alg.oid)));
        }
        // OpenSSL writes rsaEncryption, the cms builder sha1WithRSAEncryption.
        let alg = info.signature_algorithm.oid;
        if alg != RSA_ENCRYPTION && alg != SHA_1_WITH_RSA_ENCRYPTION {
            return Err(SignatureError::NotRsa(oid_name(&alg)));
        }
        let cert = self.signer_cert(&info.sid).ok_or(SignatureError::SignerCertMissing)?;
        let key = rsa_key(&cert.cert)?;
        let sig = Signature::try_from(info.signature.as_bytes()).map_err(|_| SignatureError::BadSignature(""))?;
        let vk = VerifyingKey::<Sha1>::new(key);
        match &s.signed_attrs_set {
            Some(set) => {
                // Both checks are required: a modified prefix keeps a valid
                // RSA signature over the old attributes, but not their digest.
                let attrs = info.signed_attrs.as_ref().expect("decoded with the raw form");
                let digest =
                    attrs.iter().find(|a| a.oid == ID_MESSAGE_DIGEST).and_then(|a| a.values.get(0)).ok_or(SignatureError::MissingAttribute("messageDigest"))?;
                let digest = OctetString::from_der(&digest.to_der()?)?;
                let ct =
                    attrs.iter().find(|a| a.oid == ID_CONTENT_TYPE).and_then(|a| a.values.get(0)).ok_or(SignatureError::MissingAttribute("contentType"))?;
                let ct = ObjectIdentifier::from_der(&ct.to_der()?)?;
                if ct != ID_DATA {
                    return Err(SignatureError::ContentTypeMismatch(oid_name(&ct)));
                }
                vk.verify(set, &sig).map_err(|_| SignatureError::BadSignature(" over the signed attributes"))?;
                if digest.as_bytes() != sha1(message) {
                    return Err(SignatureError::MessageDigestMismatch);
                }
            }
            None => {
                vk.verify(message, &sig).map_err(|_| SignatureError::BadSignature(": header/command list modified or wrong key"))?;
            }
        }
        validate_path(cert, self.raw_certificates(), anchors, now)
    }
}

pub(crate) fn rsa_key(cert: &Certificate) -> Result<RsaPublicKey, SignatureError> {
    let spki = cert.tbs_certificate.subject_public_key_info.to_der()?;
    RsaPublicKey::from_public_key_der(&spki).map_err(|e| SignatureError::BadKey(e.to_string()))
}

/// Make a SignerInfo over `message` with `key`, identified by `cert`'s
/// issuer and serial number.
pub(crate) fn sign(message: &[u8], key: &rsa::RsaPrivateKey, cert: &Certificate, signed_attrs: bool) -> Result<SignerInfo, SignatureError> {
    let subject = cert.tbs_certificate.subject.to_string();
    if rsa_key(cert)? != key.to_public_key() {
        return Err(SignatureError::KeyMismatch(subject));
    }
    let sid = SignerIdentifier::IssuerAndSerialNumber(IssuerAndSerialNumber {
        issuer: cert.tbs_certificate.issuer.clone(),
        serial_number: cert.tbs_certificate.serial_number.clone(),
    });
    let digest_alg = AlgorithmIdentifierOwned { oid: ID_SHA_1, parameters: Some(der::Any::null()) };
    let signing_key = SigningKey::<Sha1>::new(key.clone());
    let err = |e: &dyn std::fmt::Display| SignatureError::Signing(e.to_string());
    if signed_attrs {
        let encap = EncapsulatedContentInfo { econtent_type: ID_DATA, econtent: None };
        let digest = sha1(message);
        let mut b = SignerInfoBuilder::new(&signing_key, sid, digest_alg, &encap, Some(&digest)).map_err(|e| err(&e))?;
        b.add_signed_attribute(create_signing_time_attribute().map_err(|e| err(&e))?).map_err(|e| err(&e))?;
        b.build::<Signature>().map_err(|e| err(&e))
    } else {
        // cms's builder always adds signed attributes; this form is
        // assembled by hand: the signature covers the message itself.
        let sig = signing_key.try_sign(message).map_err(|e| err(&e))?;
        Ok(SignerInfo {
            version: CmsVersion::V1,
            sid,
            digest_alg,
            signed_attrs: None,
            signature_algorithm: AlgorithmIdentifierOwned { oid: RSA_ENCRYPTION, parameters: Some(der::Any::null()) },
            signature: OctetString::new(sig.to_vec())?,
            unsigned_attrs: None,
        })
    }
}
