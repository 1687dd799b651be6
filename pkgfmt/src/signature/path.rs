//! Certification path validation from a signer certificate to a trust
//! anchor chosen by the caller (RFC 5280 section 6, the parts a code
//! signature needs): signatures up the chain, validity dates, CA basic
//! constraints (plus keyCertSign when keyUsage is present) on every issuer
//! that is not itself an anchor, `pathLenConstraint` on every CA of the
//! path, no unrecognised critical extension in the signer or an
//! intermediate, and a signer whose keyUsage and extendedKeyUsage (when
//! present) allow signing code.
//!
//! One function, [`validate_path`], serves both signature formats: PKCS #7
//! package signatures ([`SignatureBlock::verify`](super::SignatureBlock::verify))
//! and XML-DSig vouchers ([`validate_chain`]).

use std::time::SystemTime;

use const_oid::db::rfc5280::{ANY_EXTENDED_KEY_USAGE, ID_KP_CODE_SIGNING};
use const_oid::db::rfc5912::{
    ID_CE_AUTHORITY_KEY_IDENTIFIER, ID_CE_BASIC_CONSTRAINTS, ID_CE_EXT_KEY_USAGE, ID_CE_KEY_USAGE, ID_CE_SUBJECT_ALT_NAME, ID_CE_SUBJECT_KEY_IDENTIFIER,
    SHA_1_WITH_RSA_ENCRYPTION, SHA_256_WITH_RSA_ENCRYPTION, SHA_384_WITH_RSA_ENCRYPTION, SHA_512_WITH_RSA_ENCRYPTION,
};
use const_oid::ObjectIdentifier;
use rsa::pkcs1v15::{Signature, VerifyingKey};
use signature::Verifier;
use x509_cert::ext::pkix::{BasicConstraints, ExtendedKeyUsage, KeyUsage};
use x509_cert::Certificate;

use super::cert::{rsa_key, RawCert};
use super::der_walk::{children, raw, single};
use super::error::SignatureError;
use super::oid::oid_name;

/// Longest path tried (signer + intermediates), against loops and abuse.
const MAX_DEPTH: usize = 8;

/// Options for [`SignatureBlock::verify`](super::SignatureBlock::verify) and [`validate_chain`].
#[derive(Debug, Clone, Default)]
pub struct VerifyOptions {
    /// Skip certificate validity-date checks (devices without a clock).
    pub ignore_time: bool,
    /// The time to validate at; `None` means now.
    pub now: Option<SystemTime>,
    /// Accept a signer certificate whose extendedKeyUsage allows neither
    /// codeSigning nor anyExtendedKeyUsage (legacy trust stores whose
    /// signers carry, say, only serverAuth). Without it such a signer is
    /// rejected (RFC 5280 4.2.1.12); a signer without extendedKeyUsage is
    /// accepted either way.
    pub allow_legacy_eku: bool,
}

/// The path that validated: subjects from the signer up to the anchor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainInfo {
    pub subjects: Vec<String>,
}

fn subject(c: &Certificate) -> String {
    c.tbs_certificate.subject.to_string()
}

fn cert_err(c: &Certificate, problem: impl Into<String>) -> SignatureError {
    SignatureError::Certificate { subject: subject(c), problem: problem.into() }
}

fn check_time(c: &Certificate, now: Option<SystemTime>) -> Result<(), SignatureError> {
    let Some(now) = now else { return Ok(()) };
    let v = &c.tbs_certificate.validity;
    if now < v.not_before.to_system_time() {
        return Err(cert_err(c, format!("is not valid before {}", v.not_before)));
    }
    if now > v.not_after.to_system_time() {
        return Err(cert_err(c, format!("expired at {}", v.not_after)));
    }
    Ok(())
}

fn is_anchor(c: &Certificate, anchors: &[Certificate]) -> bool {
    anchors.iter().any(|a| {
        a == c
            || (a.tbs_certificate.subject == c.tbs_certificate.subject
                && a.tbs_certificate.subject_public_key_info == c.tbs_certificate.subject_public_key_info)
    })
}

/// Verify `child`'s signature (over its TBS bytes as received) with `issuer`'s key.
fn signed_by(child_der: &[u8], child: &Certificate, issuer: &Certificate) -> Result<(), SignatureError> {
    let outer = single(child_der)?;
    let parts = children(outer.value())?;
    let tbs = raw(parts.first().ok_or_else(|| SignatureError::Malformed("empty certificate".into()))?);
    let key = rsa_key(issuer)?;
    let sig = Signature::try_from(child.signature.raw_bytes()).map_err(|_| cert_err(child, "has a malformed signature"))?;
    let alg = child.signature_algorithm.oid;
    let ok = match alg {
        a if a == SHA_256_WITH_RSA_ENCRYPTION => VerifyingKey::<sha2::Sha256>::new(key).verify(&tbs, &sig),
        a if a == SHA_384_WITH_RSA_ENCRYPTION => VerifyingKey::<sha2::Sha384>::new(key).verify(&tbs, &sig),
        a if a == SHA_512_WITH_RSA_ENCRYPTION => VerifyingKey::<sha2::Sha512>::new(key).verify(&tbs, &sig),
        a if a == SHA_1_WITH_RSA_ENCRYPTION => VerifyingKey::<sha1::Sha1>::new(key).verify(&tbs, &sig),
        other => return Err(cert_err(child, format!("uses unsupported signature algorithm {}", oid_name(&other)))),
    };
    ok.map_err(|_| cert_err(child, format!("has an invalid signature from issuer {}", subject(issuer))))
}

/// The extensions this validation processes. RFC 5280 4.2: "A
/// certificate-using system MUST reject the certificate if it encounters a
/// critical extension it does not recognize or a critical extension that
/// contains information that it cannot process." basicConstraints,
/// keyUsage and extendedKeyUsage are checked here; the key identifiers only
/// help to find an issuer; subjectAltName is recognised because names are
/// never matched (a code signer is trusted for its path, not its name), so
/// it holds nothing this validation would have to process. Anything else
/// marked critical (nameConstraints, policyConstraints, certificatePolicies,
/// ...) constrains the path in a way that is not checked here: rejected.
const RECOGNISED_EXTENSIONS: [ObjectIdentifier; 6] =
    [ID_CE_BASIC_CONSTRAINTS, ID_CE_KEY_USAGE, ID_CE_EXT_KEY_USAGE, ID_CE_SUBJECT_KEY_IDENTIFIER, ID_CE_AUTHORITY_KEY_IDENTIFIER, ID_CE_SUBJECT_ALT_NAME];

/// RFC 5280 4.2: no critical extension that is not in [`RECOGNISED_EXTENSIONS`].
fn check_critical_extensions(c: &Certificate) -> Result<(), SignatureError> {
    let exts = c.tbs_certificate.extensions.as_deref().unwrap_or(&[]);
    match exts.iter().find(|e| e.critical && !RECOGNISED_EXTENSIONS.contains(&e.extn_id)) {
        Some(e) => Err(cert_err(c, format!("has an unrecognised critical extension {} (RFC 5280 4.2: must be rejected)", extension_name(&e.extn_id)))),
        None => Ok(()),
    }
}

/// "name (dotted OID)" when the OID database knows the name, else the dotted OID.
fn extension_name(oid: &ObjectIdentifier) -> String {
    match const_oid::db::DB.by_oid(oid) {
        Some(name) => format!("{name} ({oid})"),
        None => oid.to_string(),
    }
}

/// Self-issued (RFC 5280 3.2 and 6.1): subject and issuer are the same name.
fn self_issued(c: &Certificate) -> bool {
    c.tbs_certificate.subject == c.tbs_certificate.issuer
}

/// RFC 5280 4.2.1.9: pathLenConstraint "gives the maximum number of
/// non-self-issued intermediate certificates that may follow this
/// certificate in a valid certification path"; `below` is that number for
/// `ca` in the path being built. Checked on every CA of the path, the
/// trust anchor included (as OpenSSL's `verify` does).
fn check_path_len(ca: &Certificate, below: usize) -> Result<(), SignatureError> {
    let bc = ca.tbs_certificate.get::<BasicConstraints>().map_err(|e| cert_err(ca, format!("basicConstraints: {e}")))?;
    match bc.and_then(|(_, bc)| bc.path_len_constraint) {
        Some(max) if below > usize::from(max) => Err(cert_err(
            ca,
            format!("has basicConstraints pathLenConstraint {max} but {below} intermediate CA certificate(s) follow it in the path (RFC 5280 4.2.1.9)"),
        )),
        _ => Ok(()),
    }
}

/// An issuer that is not a trust anchor must be a CA allowed to sign certificates.
fn check_ca(c: &Certificate) -> Result<(), SignatureError> {
    let bc = c.tbs_certificate.get::<BasicConstraints>().map_err(|e| cert_err(c, format!("basicConstraints: {e}")))?;
    if !bc.is_some_and(|(_, bc)| bc.ca) {
        return Err(cert_err(c, "is not a CA (basicConstraints CA:TRUE missing) but issued a certificate in the path"));
    }
    if let Some((_, ku)) = c.tbs_certificate.get::<KeyUsage>().map_err(|e| cert_err(c, format!("keyUsage: {e}")))? {
        if !ku.key_cert_sign() {
            return Err(cert_err(c, "keyUsage lacks keyCertSign"));
        }
    }
    Ok(())
}

/// A signer certificate must be usable for signatures when keyUsage is
/// present, and for code signing when extendedKeyUsage is present (RFC 5280
/// 4.2.1.12: "If the extension is present, then the certificate MUST only
/// be used for one of the purposes indicated"): id-kp-codeSigning or
/// anyExtendedKeyUsage, unless `legacy_eku` accepts any purpose.
fn check_signer_usage(c: &Certificate, legacy_eku: bool) -> Result<(), SignatureError> {
    if let Some((_, ku)) = c.tbs_certificate.get::<KeyUsage>().map_err(|e| cert_err(c, format!("keyUsage: {e}")))? {
        if !ku.digital_signature() && !ku.non_repudiation() {
            return Err(cert_err(c, "keyUsage allows neither digitalSignature nor nonRepudiation"));
        }
    }
    if let Some((_, eku)) = c.tbs_certificate.get::<ExtendedKeyUsage>().map_err(|e| cert_err(c, format!("extendedKeyUsage: {e}")))? {
        if !legacy_eku && !eku.0.iter().any(|p| *p == ID_KP_CODE_SIGNING || *p == ANY_EXTENDED_KEY_USAGE) {
            let purposes = eku.0.iter().map(|p| const_oid::db::DB.by_oid(p).map(str::to_string).unwrap_or_else(|| p.to_string())).collect::<Vec<_>>();
            return Err(cert_err(
                c,
                format!(
                    "has extendedKeyUsage [{}] allowing neither codeSigning nor anyExtendedKeyUsage (RFC 5280 4.2.1.12; the legacy extendedKeyUsage option accepts it)",
                    purposes.join(", ")
                ),
            ));
        }
    }
    Ok(())
}

/// Find a path from `leaf` through certificates in `pool` to an anchor,
/// under `opts` (validity dates unless `ignore_time`; extendedKeyUsage).
pub(crate) fn validate_path(leaf: &RawCert, pool: &[RawCert], anchors: &[Certificate], opts: &VerifyOptions) -> Result<ChainInfo, SignatureError> {
    let now = (!opts.ignore_time).then(|| opts.now.unwrap_or_else(SystemTime::now));
    check_critical_extensions(&leaf.cert)?;
    check_signer_usage(&leaf.cert, opts.allow_legacy_eku)?;
    check_time(&leaf.cert, now)?;
    let mut subjects = vec![subject(&leaf.cert)];
    let mut current = leaf.clone();
    let mut visited = vec![leaf.der.clone()];
    // Non-self-issued intermediates between the leaf and `current`'s issuer.
    let mut intermediates = 0usize;
    for _ in 0..MAX_DEPTH {
        if is_anchor(&current.cert, anchors) {
            return Ok(ChainInfo { subjects });
        }
        let issuer_name = &current.cert.tbs_certificate.issuer;
        // An anchor issued it: done (anchors are trusted as given).
        let mut last_problem = None;
        for a in anchors.iter().filter(|a| &a.tbs_certificate.subject == issuer_name) {
            match signed_by(&current.der, &current.cert, a) {
                Ok(()) => {
                    check_path_len(a, intermediates)?;
                    check_time(a, now)?;
                    subjects.push(subject(a));
                    return Ok(ChainInfo { subjects });
                }
                Err(e) => last_problem = Some(e),
            }
        }
        // Otherwise an intermediate carried in the block.
        let next = pool.iter().filter(|c| &c.cert.tbs_certificate.subject == issuer_name && !visited.contains(&c.der)).find(|c| {
            match signed_by(&current.der, &current.cert, &c.cert) {
                Ok(()) => true,
                Err(e) => {
                    last_problem = Some(e);
                    false
                }
            }
        });
        let Some(next) = next else {
            return Err(last_problem.unwrap_or_else(|| {
                SignatureError::Untrusted(format!(
                    "chain does not reach a trust anchor (no trusted issuer \"{issuer_name}\" for \"{}\")",
                    subject(&current.cert)
                ))
            }));
        };
        if !is_anchor(&next.cert, anchors) {
            check_ca(&next.cert)?;
            check_critical_extensions(&next.cert)?;
        }
        check_path_len(&next.cert, intermediates)?;
        check_time(&next.cert, now)?;
        subjects.push(subject(&next.cert));
        visited.push(next.der.clone());
        if !self_issued(&next.cert) {
            intermediates += 1;
        }
        current = next.clone();
    }
    Err(SignatureError::Untrusted(format!("no path to a trust anchor within {MAX_DEPTH} certificates")))
}

/// Path validation for certificates given as DER (for other signature
/// formats, e.g. XML-DSig vouchers), with the same rules as a package
/// signature: `leaf` must chain through `pool` to one of `anchors`.
pub fn validate_chain(leaf_der: &[u8], pool_der: &[Vec<u8>], anchors: &[Certificate], opts: &VerifyOptions) -> Result<ChainInfo, SignatureError> {
    use der::Decode;
    let raw = |d: &[u8]| -> Result<RawCert, SignatureError> { Ok(RawCert { der: d.to_vec(), cert: Certificate::from_der(d)? }) };
    let leaf = raw(leaf_der)?;
    let pool = pool_der.iter().map(|d| raw(d)).collect::<Result<Vec<_>, _>>()?;
    validate_path(&leaf, &pool, anchors, opts)
}
