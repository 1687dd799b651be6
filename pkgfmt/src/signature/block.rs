//! The signature block as received: a `ContentInfo` whose `SignedData`
//! is kept both decoded (for typed access) and as raw DER elements (for
//! byte-exact verification and for adding signers without disturbing the
//! existing ones).

use cms::signed_data::SignerIdentifier;
use const_oid::db::rfc5911::{ID_DATA, ID_SIGNED_DATA};
use der::asn1::ObjectIdentifier as Oid;
use der::{Decode, Encode, Tag, TagNumber, Tagged};
use x509_cert::Certificate;

use super::cert::RawCert;
use super::der_walk::{children, raw, single, tlv};
use super::error::SignatureError;
use super::oid::oid_name;
use super::signer::{sha1_algorithm_der, sign, RawSigner, RsaSha1Signer, SignOptions};

/// E.5: "the content of an empty signature block is independent of the
/// content of the package and thus can be pre-computed as a fixed sequence
/// of bytes": ContentInfo { signedData, SignedData { version 1,
/// digestAlgorithms {}, encapContentInfo { data }, signerInfos {} } }.
pub const EMPTY_SIGNATURE_BLOCK: [u8; 37] = [
    0x30, 0x23, // ContentInfo SEQUENCE
    0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x02, // signedData
    0xa0, 0x16, // [0] EXPLICIT
    0x30, 0x14, // SignedData SEQUENCE
    0x02, 0x01, 0x01, // version 1
    0x31, 0x00, // digestAlgorithms: empty SET ("may be empty")
    0x30, 0x0b, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x01, // { data }, no content
    0x31, 0x00, // signerInfos: empty SET
];

/// What `inspect` shows about one signer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignerSummary {
    /// Subject of the signer certificate, or the issuer/serial if absent.
    pub subject: String,
    pub issuer: String,
    /// Serial number in hex.
    pub serial: String,
    pub digest_algorithm: String,
    pub signature_algorithm: String,
    pub signed_attributes: bool,
    /// The signer certificate's RSA modulus size in bits, if it is carried
    /// and holds an RSA key.
    pub key_bits: Option<usize>,
    /// The algorithm its issuer signed the signer certificate with.
    pub certificate_signature_algorithm: Option<String>,
    /// The end of the signer certificate's validity.
    pub not_after: Option<String>,
}

/// A parsed E.5 signature block.
#[derive(Debug, Clone)]
pub struct SignatureBlock {
    der: Vec<u8>,
    version: Vec<u8>,
    digest_algorithms: Vec<Vec<u8>>,
    encap: Vec<u8>,
    certificates: Vec<RawCert>,
    /// Raw CertificateChoices that are not plain certificates, kept verbatim.
    other_certificates: Vec<Vec<u8>>,
    crls: Option<Vec<u8>>,
    pub(crate) signers: Vec<RawSigner>,
}

const CTX0: Tag = Tag::ContextSpecific { constructed: true, number: TagNumber::N0 };
const CTX1: Tag = Tag::ContextSpecific { constructed: true, number: TagNumber::N1 };

impl SignatureBlock {
    /// The fixed empty block.
    pub fn empty() -> Self {
        SignatureBlock::parse(&EMPTY_SIGNATURE_BLOCK).expect("the empty block parses")
    }

    /// Strictly parse exactly one ContentInfo/SignedData occupying `der`.
    pub fn parse(der: &[u8]) -> Result<Self, SignatureError> {
        let ci = single(der)?;
        if ci.tag() != Tag::Sequence {
            return Err(SignatureError::Malformed(format!("ContentInfo is a {}, not a SEQUENCE", ci.tag())));
        }
        let parts = children(ci.value())?;
        let [ct, content] = parts.as_slice() else {
            return Err(SignatureError::Malformed("ContentInfo must have contentType and content".into()));
        };
        let ct = Oid::try_from(*ct)?;
        if ct != ID_SIGNED_DATA {
            return Err(SignatureError::NotSignedData(oid_name(&ct)));
        }
        if content.tag() != CTX0 {
            return Err(SignatureError::Malformed("ContentInfo content is not [0] EXPLICIT".into()));
        }
        let sd = single(content.value())?;
        if sd.tag() != Tag::Sequence {
            return Err(SignatureError::Malformed("SignedData is not a SEQUENCE".into()));
        }
        // Typed decode first: it validates the whole structure.
        let typed = cms::signed_data::SignedData::from_der(&raw(&sd))?;
        if typed.encap_content_info.econtent_type != ID_DATA {
            return Err(SignatureError::NotData(oid_name(&typed.encap_content_info.econtent_type)));
        }
        if typed.encap_content_info.econtent.is_some() {
            return Err(SignatureError::NotDetached);
        }

        let fields = children(sd.value())?;
        let mut it = fields.iter().peekable();
        let version = raw(it.next().ok_or_else(|| SignatureError::Malformed("SignedData is empty".into()))?);
        let digest_set = it.next().ok_or_else(|| SignatureError::Malformed("no digestAlgorithms".into()))?;
        let digest_algorithms = children(digest_set.value())?.iter().map(raw).collect();
        let encap = raw(it.next().ok_or_else(|| SignatureError::Malformed("no encapContentInfo".into()))?);
        let mut certificates = Vec::new();
        let mut other_certificates = Vec::new();
        if let Some(c) = it.next_if(|a| a.tag() == CTX0) {
            for choice in children(c.value())? {
                if choice.tag() == Tag::Sequence {
                    let der = raw(&choice);
                    certificates.push(RawCert { cert: Certificate::from_der(&der)?, der });
                } else {
                    other_certificates.push(raw(&choice));
                }
            }
        }
        let crls = it.next_if(|a| a.tag() == CTX1).map(|c| raw(c));
        let signer_set = it.next().ok_or_else(|| SignatureError::Malformed("no signerInfos".into()))?;
        if it.next().is_some() {
            return Err(SignatureError::Malformed("trailing fields after signerInfos".into()));
        }
        let mut signers = Vec::new();
        for si in children(signer_set.value())? {
            signers.push(RawSigner::parse(&si)?);
        }
        Ok(SignatureBlock { der: der.to_vec(), version, digest_algorithms, encap, certificates, other_certificates, crls, signers })
    }

    /// The DER bytes; identical to the input for a parsed block.
    pub fn to_der(&self) -> Vec<u8> {
        self.der.clone()
    }

    /// Certificates carried in the block.
    pub fn certificates(&self) -> Vec<Certificate> {
        self.certificates.iter().map(|c| c.cert.clone()).collect()
    }

    pub(crate) fn raw_certificates(&self) -> &[RawCert] {
        &self.certificates
    }

    /// Find the certificate a SignerIdentifier names.
    pub(crate) fn signer_cert(&self, sid: &SignerIdentifier) -> Option<&RawCert> {
        self.certificates.iter().find(|c| c.matches(sid))
    }

    pub fn signers(&self) -> Vec<SignerSummary> {
        self.signers.iter().map(|s| self.summary(s)).collect()
    }

    pub(crate) fn summary(&self, s: &RawSigner) -> SignerSummary {
        let (issuer, serial) = match &s.info.sid {
            SignerIdentifier::IssuerAndSerialNumber(ias) => (ias.issuer.to_string(), hex::encode(ias.serial_number.as_bytes())),
            SignerIdentifier::SubjectKeyIdentifier(ski) => (String::new(), format!("ski:{}", hex::encode(ski.0.as_bytes()))),
        };
        let cert = self.signer_cert(&s.info.sid);
        SignerSummary {
            subject: cert.map(|c| c.cert.tbs_certificate.subject.to_string()).unwrap_or_else(|| format!("<unknown signer, serial {serial}>")),
            issuer: cert.map(|c| c.cert.tbs_certificate.issuer.to_string()).unwrap_or(issuer),
            serial,
            digest_algorithm: oid_name(&s.info.digest_alg.oid),
            signature_algorithm: oid_name(&s.info.signature_algorithm.oid),
            signed_attributes: s.signed_attrs_set.is_some(),
            key_bits: cert.and_then(|c| super::cert::rsa_key(&c.cert).ok()).map(|k| rsa::traits::PublicKeyParts::size(&k) * 8),
            certificate_signature_algorithm: cert.map(|c| oid_name(&c.cert.signature_algorithm.oid)),
            not_after: cert.map(|c| c.cert.tbs_certificate.validity.not_after.to_string()),
        }
    }

    /// A new block with one more signer over `message`, signed now. See
    /// [`add_signer_with`](Self::add_signer_with).
    pub fn add_signer(
        &self,
        message: &[u8],
        key: &rsa::RsaPrivateKey,
        cert: &Certificate,
        chain: &[Certificate],
        signed_attrs: bool,
    ) -> Result<SignatureBlock, SignatureError> {
        self.add_signer_with(message, key, cert, chain, &SignOptions { signed_attributes: signed_attrs, signing_time: None })
    }

    /// A new block with one more signer over `message`. Existing signers,
    /// certificates and digest algorithms are kept byte for byte; the
    /// signer certificate and `chain` are added unless already present.
    pub fn add_signer_with(
        &self,
        message: &[u8],
        key: &dyn RsaSha1Signer,
        cert: &Certificate,
        chain: &[Certificate],
        opts: &SignOptions,
    ) -> Result<SignatureBlock, SignatureError> {
        let info = sign(message, key, cert, opts)?;
        let mut certs: Vec<Vec<u8>> = self.certificates.iter().map(|c| c.der.clone()).collect();
        for c in std::iter::once(cert).chain(chain) {
            let der = c.to_der()?;
            if !certs.contains(&der) {
                certs.push(der);
            }
        }
        let sha1_alg = sha1_algorithm_der();
        let mut digests = self.digest_algorithms.clone();
        if !digests.contains(&sha1_alg) {
            digests.push(sha1_alg);
        }
        let mut signer_infos: Vec<Vec<u8>> = self.signers.iter().map(|s| s.der.clone()).collect();
        signer_infos.push(info.to_der()?);
        self.assemble(&digests, certs, &signer_infos)
    }

    /// Whether a signer of this block is identified by `cert` (its issuer
    /// and serial number, or its subject key identifier).
    pub fn is_signed_by(&self, cert: &Certificate) -> Result<bool, SignatureError> {
        let raw = RawCert { der: cert.to_der()?, cert: cert.clone() };
        Ok(self.signers.iter().any(|s| raw.matches(&s.info.sid)))
    }

    /// A new block without signer `index` (0-based, in block order). The
    /// other signers are kept byte for byte, and so are the certificates,
    /// except the removed signer's own certificate when no other signer
    /// names it.
    pub fn remove_signer(&self, index: usize) -> Result<SignatureBlock, SignatureError> {
        let Some(gone) = self.signers.get(index) else {
            return Err(SignatureError::NoSuchSigner { index, count: self.signers.len() });
        };
        let rest: Vec<&RawSigner> = self.signers.iter().enumerate().filter(|(i, _)| *i != index).map(|(_, s)| s).collect();
        let certs =
            self.certificates.iter().filter(|c| !c.matches(&gone.info.sid) || rest.iter().any(|s| c.matches(&s.info.sid))).map(|c| c.der.clone()).collect();
        let infos: Vec<Vec<u8>> = rest.iter().map(|s| s.der.clone()).collect();
        self.assemble(&self.digest_algorithms, certs, &infos)
    }

    /// The ContentInfo with this block's version, encapsulated content and
    /// CRLs and the given digest algorithms, certificates and signers.
    fn assemble(&self, digests: &[Vec<u8>], mut certs: Vec<Vec<u8>>, signer_infos: &[Vec<u8>]) -> Result<SignatureBlock, SignatureError> {
        certs.extend(self.other_certificates.iter().cloned());
        let mut sd = self.version.clone();
        sd.extend(tlv(Tag::Set, &digests.concat()));
        sd.extend(&self.encap);
        if !certs.is_empty() {
            sd.extend(tlv(CTX0, &certs.concat()));
        }
        if let Some(crls) = &self.crls {
            sd.extend(crls);
        }
        sd.extend(tlv(Tag::Set, &signer_infos.concat()));
        let mut ci = ID_SIGNED_DATA.to_der()?;
        ci.extend(tlv(CTX0, &tlv(Tag::Sequence, &sd)));
        SignatureBlock::parse(&tlv(Tag::Sequence, &ci))
    }
}
