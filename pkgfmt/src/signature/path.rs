//! Certification path validation from a signer certificate to a trust
//! anchor chosen by the caller: signatures up the chain, validity dates,
//! and CA basic constraints (plus keyCertSign when keyUsage is present)
//! on every issuer that is not itself an anchor.

use std::time::SystemTime;

use const_oid::db::rfc5912::{SHA_1_WITH_RSA_ENCRYPTION, SHA_256_WITH_RSA_ENCRYPTION, SHA_384_WITH_RSA_ENCRYPTION, SHA_512_WITH_RSA_ENCRYPTION};
use rsa::pkcs1v15::{Signature, VerifyingKey};
use signature::Verifier;
use x509_cert::ext::pkix::{BasicConstraints, KeyUsage};
use x509_cert::Certificate;

use super::cert::{rsa_key, RawCert};
use super::der_walk::{children, raw, single};
use super::error::SignatureError;
use super::oid::oid_name;

/// Longest path tried (signer + intermediates), against loops and abuse.
const MAX_DEPTH: usize = 8;

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

/// A signer certificate must be usable for signatures when keyUsage is present.
fn check_signer_usage(c: &Certificate) -> Result<(), SignatureError> {
    if let Some((_, ku)) = c.tbs_certificate.get::<KeyUsage>().map_err(|e| cert_err(c, format!("keyUsage: {e}")))? {
        if !ku.digital_signature() && !ku.non_repudiation() {
            return Err(cert_err(c, "keyUsage allows neither digitalSignature nor nonRepudiation"));
        }
    }
    Ok(())
}

/// Find a path from `leaf` through certificates in `pool` to an anchor.
/// `now = None` skips validity dates.
pub(crate) fn validate_path(leaf: &RawCert, pool: &[RawCert], anchors: &[Certificate], now: Option<SystemTime>) -> Result<ChainInfo, SignatureError> {
    check_signer_usage(&leaf.cert)?;
    check_time(&leaf.cert, now)?;
    let mut subjects = vec![subject(&leaf.cert)];
    let mut current = leaf.clone();
    let mut visited = vec![leaf.der.clone()];
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
        }
        check_time(&next.cert, now)?;
        subjects.push(subject(&next.cert));
        visited.push(next.der.clone());
        current = next.clone();
    }
    Err(SignatureError::Untrusted(format!("no path to a trust anchor within {MAX_DEPTH} certificates")))
}

/// Path validation for certificates given as DER (for other signature
/// formats, e.g. XML-DSig vouchers): `leaf` must chain through `pool` to
/// one of `anchors`. `now = None` skips validity dates.
pub fn validate_chain(leaf_der: &[u8], pool_der: &[Vec<u8>], anchors: &[Certificate], now: Option<SystemTime>) -> Result<ChainInfo, SignatureError> {
    use der::Decode;
    let raw = |d: &[u8]| -> Result<RawCert, SignatureError> { Ok(RawCert { der: d.to_vec(), cert: Certificate::from_der(d)? }) };
    let leaf = raw(leaf_der)?;
    let pool = pool_der.iter().map(|d| raw(d)).collect::<Result<Vec<_>, _>>()?;
    validate_path(&leaf, &pool, anchors, now)
}
