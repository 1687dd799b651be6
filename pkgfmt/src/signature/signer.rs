//! One SignerInfo (E.5: "The digestAlgorithm used for each signature MUST
//! be of type SHA-1", "The digestEncryptionAlgorithm used for each
//! signature MUST be of type RSA"): creating it, and checking its
//! signature over the signed message, with or without signed attributes.
//! Which certificate it names and whether that certificate is trusted are
//! decided by the block and the path validation.

use std::time::SystemTime;

use cms::builder::{create_content_type_attribute, create_message_digest_attribute};
use cms::cert::IssuerAndSerialNumber;
use cms::content_info::CmsVersion;
use cms::signed_data::{SignedAttributes, SignerIdentifier, SignerInfo};
use const_oid::db::rfc5911::{ID_CONTENT_TYPE, ID_DATA, ID_MESSAGE_DIGEST, ID_SIGNING_TIME};
use const_oid::db::rfc5912::{ID_SHA_1, RSA_ENCRYPTION, SHA_1_WITH_RSA_ENCRYPTION};
use der::asn1::{AnyRef, ObjectIdentifier, OctetString, SetOfVec};
use der::{Decode, Encode, Tag, TagNumber, Tagged};
use rsa::pkcs1v15::{Signature, SigningKey, VerifyingKey};
use sha1::{Digest, Sha1};
use signature::{SignatureEncoding, Signer, Verifier};
use spki::AlgorithmIdentifierOwned;
use x509_cert::attr::{Attribute, AttributeValue};
use x509_cert::time::Time;
use x509_cert::Certificate;

use super::cert::{rsa_key, RawCert};
use super::der_walk::{children, raw, tlv};
use super::error::SignatureError;
use super::oid::oid_name;

const CTX0: Tag = Tag::ContextSpecific { constructed: true, number: TagNumber::N0 };

/// One signer, raw and decoded.
#[derive(Debug, Clone)]
pub(crate) struct RawSigner {
    pub der: Vec<u8>,
    pub info: SignerInfo,
    /// `signedAttrs` re-tagged as the DER SET OF that was signed
    /// (RFC 5652 5.4: the IMPLICIT [0] is replaced by an EXPLICIT SET OF tag).
    pub signed_attrs_set: Option<Vec<u8>>,
}

impl RawSigner {
    /// Decode one SignerInfo element, keeping its bytes as received.
    pub(crate) fn parse(si: &AnyRef<'_>) -> Result<RawSigner, SignatureError> {
        let der = raw(si);
        let info = SignerInfo::from_der(&der)?;
        // version, sid, digestAlgorithm, then [0] signedAttrs if present.
        let fields = children(si.value())?;
        let signed_attrs_set = fields.get(3).filter(|a| a.tag() == CTX0).map(|a| tlv(Tag::Set, a.value()));
        Ok(RawSigner { der, info, signed_attrs_set })
    }

    /// Check this signer's algorithms (E.5), then its RSA signature over
    /// `message` (header + command list) with the key of `cert`, the
    /// certificate its SignerIdentifier names (if the block carries it).
    /// Returns that certificate.
    pub(crate) fn check<'c>(&self, cert: Option<&'c RawCert>, message: &[u8]) -> Result<&'c RawCert, SignatureError> {
        let info = &self.info;
        if info.digest_alg.oid != ID_SHA_1 {
            return Err(SignatureError::DigestNotSha1(oid_name(&info.digest_alg.oid)));
        }
        // OpenSSL writes rsaEncryption, the cms builder sha1WithRSAEncryption.
        let alg = info.signature_algorithm.oid;
        if alg != RSA_ENCRYPTION && alg != SHA_1_WITH_RSA_ENCRYPTION {
            return Err(SignatureError::NotRsa(oid_name(&alg)));
        }
        let cert = cert.ok_or(SignatureError::SignerCertMissing)?;
        let key = rsa_key(&cert.cert)?;
        let sig = Signature::try_from(info.signature.as_bytes()).map_err(|_| SignatureError::BadSignature(""))?;
        let vk = VerifyingKey::<Sha1>::new(key);
        match &self.signed_attrs_set {
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
        Ok(cert)
    }
}

/// An RSA private key that makes E.5 signatures (RSASSA-PKCS1-v1_5 with
/// SHA-1), wherever it is kept: in memory ([`rsa::RsaPrivateKey`]) or in a
/// token that never lets it out.
pub trait RsaSha1Signer {
    /// The public half, to check that it matches the signer certificate.
    fn public_key(&self) -> Result<rsa::RsaPublicKey, SignatureError>;
    /// The PKCS#1 v1.5 signature, with a SHA-1 DigestInfo, of `message`.
    fn sign_sha1(&self, message: &[u8]) -> Result<Vec<u8>, SignatureError>;
}

impl RsaSha1Signer for rsa::RsaPrivateKey {
    fn public_key(&self) -> Result<rsa::RsaPublicKey, SignatureError> {
        Ok(self.to_public_key())
    }

    fn sign_sha1(&self, message: &[u8]) -> Result<Vec<u8>, SignatureError> {
        let sig = SigningKey::<Sha1>::new(self.clone()).try_sign(message).map_err(|e| SignatureError::Signing(e.to_string()))?;
        Ok(sig.to_vec())
    }
}

/// How a signature is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignOptions {
    /// PKCS#9 signed attributes (contentType, signingTime, messageDigest),
    /// with the RSA signature over them; otherwise over the message itself.
    pub signed_attributes: bool,
    /// The signingTime attribute; `None`: now. Fixing it (from
    /// `SOURCE_DATE_EPOCH`) makes signing reproducible: RSA PKCS#1 v1.5 is
    /// deterministic, so the same key over the same message with the same
    /// time gives the same bytes.
    pub signing_time: Option<SystemTime>,
}

impl Default for SignOptions {
    fn default() -> Self {
        SignOptions { signed_attributes: true, signing_time: None }
    }
}

/// RFC 5652 11.3: signingTime is UTCTime from 1950 to 2049, GeneralizedTime otherwise.
fn signing_time_attribute(t: SystemTime) -> Result<Attribute, SignatureError> {
    let time = Time::try_from(t).map_err(|e| SignatureError::Signing(format!("signing time: {e}")))?;
    let mut values = SetOfVec::<AttributeValue>::new();
    values.insert(AttributeValue::from_der(&time.to_der()?)?)?;
    Ok(Attribute { oid: ID_SIGNING_TIME, values })
}

/// Make a SignerInfo over `message` with `key`, identified by `cert`'s
/// issuer and serial number.
pub(crate) fn sign(message: &[u8], key: &dyn RsaSha1Signer, cert: &Certificate, opts: &SignOptions) -> Result<SignerInfo, SignatureError> {
    let subject = cert.tbs_certificate.subject.to_string();
    if rsa_key(cert)? != key.public_key()? {
        return Err(SignatureError::KeyMismatch(subject));
    }
    let sid = SignerIdentifier::IssuerAndSerialNumber(IssuerAndSerialNumber {
        issuer: cert.tbs_certificate.issuer.clone(),
        serial_number: cert.tbs_certificate.serial_number.clone(),
    });
    let digest_alg = AlgorithmIdentifierOwned { oid: ID_SHA_1, parameters: Some(der::Any::null()) };
    let err = |e: &dyn std::fmt::Display| SignatureError::Signing(e.to_string());
    if opts.signed_attributes {
        // RFC 5652 5.4: the signature covers the DER SET OF the attributes
        // (the SetOfVec sorts them into DER order).
        let attrs = vec![
            create_content_type_attribute(ID_DATA).map_err(|e| err(&e))?,
            signing_time_attribute(opts.signing_time.unwrap_or_else(SystemTime::now))?,
            create_message_digest_attribute(&sha1(message)).map_err(|e| err(&e))?,
        ];
        let attrs = SignedAttributes::try_from(attrs)?;
        let sig = key.sign_sha1(&attrs.to_der()?)?;
        Ok(SignerInfo {
            version: CmsVersion::V1,
            sid,
            digest_alg,
            signed_attrs: Some(attrs),
            signature_algorithm: AlgorithmIdentifierOwned { oid: SHA_1_WITH_RSA_ENCRYPTION, parameters: Some(der::Any::null()) },
            signature: OctetString::new(sig)?,
            unsigned_attrs: None,
        })
    } else {
        // The signature covers the message itself.
        Ok(SignerInfo {
            version: CmsVersion::V1,
            sid,
            digest_alg,
            signed_attrs: None,
            signature_algorithm: AlgorithmIdentifierOwned { oid: RSA_ENCRYPTION, parameters: Some(der::Any::null()) },
            signature: OctetString::new(key.sign_sha1(message)?)?,
            unsigned_attrs: None,
        })
    }
}

/// AlgorithmIdentifier { id-sha1, NULL } as OpenSSL writes it.
pub(crate) fn sha1_algorithm_der() -> Vec<u8> {
    let mut v = ID_SHA_1.to_der().expect("static oid");
    v.extend([0x05, 0x00]);
    tlv(Tag::Sequence, &v)
}

/// SHA-1 of the signed message.
fn sha1(message: &[u8]) -> [u8; 20] {
    Sha1::digest(message).into()
}
