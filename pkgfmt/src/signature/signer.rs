//! One SignerInfo (E.5: "The digestAlgorithm used for each signature MUST
//! be of type SHA-1", "The digestEncryptionAlgorithm used for each
//! signature MUST be of type RSA"): creating it, and checking its
//! signature over the signed message, with or without signed attributes.
//! Which certificate it names and whether that certificate is trusted are
//! decided by the block and the path validation.

use cms::builder::{create_signing_time_attribute, SignerInfoBuilder};
use cms::cert::IssuerAndSerialNumber;
use cms::content_info::CmsVersion;
use cms::signed_data::{EncapsulatedContentInfo, SignerIdentifier, SignerInfo};
use const_oid::db::rfc5911::{ID_CONTENT_TYPE, ID_DATA, ID_MESSAGE_DIGEST};
use const_oid::db::rfc5912::{ID_SHA_1, RSA_ENCRYPTION, SHA_1_WITH_RSA_ENCRYPTION};
use der::asn1::{AnyRef, ObjectIdentifier, OctetString};
use der::{Decode, Encode, Tag, TagNumber, Tagged};
use rsa::pkcs1v15::{Signature, SigningKey, VerifyingKey};
use sha1::{Digest, Sha1};
use signature::{SignatureEncoding, Signer, Verifier};
use spki::AlgorithmIdentifierOwned;
use x509_cert::builder::Builder;
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
