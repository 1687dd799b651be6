//! The XML-DSig verification profile for vouchers (C.2, C.3, Figure 6),
//! the parts that need no libxmlsec1: the wire form, the structural
//! pre-check, reading Options from digested bytes, `inspect`.
//!
//! The signature work itself (C14N, digests, SignatureValue) is libxmlsec1's
//! and lives in the `cpekit-xmldsig` package, run by the agent and the CLI in
//! a short-lived helper process ([`crate::helper`]) so that no process that
//! never sees a voucher maps libxmlsec1, libxml2 or ICU. The profile:
//!
//! * the key comes only from an X.509 certificate in KeyInfo whose path
//!   validates to the caller's trust anchors (the package signature's path
//!   rules); libxmlsec1 never reads KeyInfo, and a KeyValue alone is never
//!   trusted;
//! * no DOCTYPE / entities, no network, no recovery when parsing; only
//!   same-document `#Id` references; only inclusive C14N 20010315
//!   transforms and the SignedInfo algorithms the spec's era uses;
//! * Option values are read from the exact bytes each validated Reference
//!   digested (its pre-digest buffer, comment-free C14N:
//!   [`options_from_digested`]), every Id must be unique and every Option
//!   must sit in a signed Object — this defeats signature wrapping and
//!   comment injection;
//! * cheap checks first: the [`crate::limits`] before any parser builds a
//!   tree ([`precheck`]), the References counted, and the signer's key and
//!   its SignatureValue over SignedInfo checked before libxmlsec1 digests
//!   any Reference.

use serde::{Deserialize, Serialize};

use crate::limits::{MAX_CERTIFICATES, MAX_REFERENCES, MAX_VOUCHER_BYTES, VOUCHER_XML};
use crate::option::VoucherOption;
use crate::VoucherError;

pub const DSIG_NS: &str = "http://www.w3.org/2000/09/xmldsig#";
pub const C14N: &str = "http://www.w3.org/TR/2001/REC-xml-c14n-20010315";
pub const RSA_SHA1: &str = "http://www.w3.org/2000/09/xmldsig#rsa-sha1";
pub const RSA_SHA256: &str = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256";
pub const DSA_SHA1: &str = "http://www.w3.org/2000/09/xmldsig#dsa-sha1";
pub const SHA1: &str = "http://www.w3.org/2000/09/xmldsig#sha1";
pub const SHA256: &str = "http://www.w3.org/2001/04/xmlenc#sha256";

/// Every X509Certificate carried in the document (KeyInfo), as DER.
pub fn certs_in(doc: &roxmltree::Document<'_>) -> Vec<Vec<u8>> {
    use base64::Engine;
    doc.descendants()
        .filter(|d| d.is_element() && d.tag_name().name() == "X509Certificate")
        .filter_map(|c| {
            let b64: String = c.text()?.split_whitespace().collect();
            base64::engine::general_purpose::STANDARD.decode(b64).ok()
        })
        .collect()
}

/// Signature algorithm for a voucher's signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SignAlgorithm {
    /// RSA-SHA1 with SHA-1 digests (the spec's era; default).
    RsaSha1,
    /// RSA-SHA256 with SHA-256 digests.
    RsaSha256,
}

/// A voucher whose signature validated against a trust anchor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifiedVoucher {
    /// The Options, read from the digested bytes, in Reference order.
    pub options: Vec<VoucherOption>,
    /// Subject of the first X.509 certificate in KeyInfo.
    pub signer: Option<String>,
    pub signature_method: String,
}

/// The voucher limits, checked by a streaming scan before a parser runs.
pub fn check_limits(xml: &[u8]) -> Result<(), VoucherError> {
    VOUCHER_XML.check(xml)?;
    Ok(())
}

/// What the pre-check found: the SignatureMethod, the referenced Ids and
/// the DER of every X509Certificate.
pub type Prechecked = (String, Vec<String>, Vec<Vec<u8>>);

/// Structural pre-check on the whole document before any crypto.
pub fn precheck(xml: &str) -> Result<Prechecked, VoucherError> {
    check_limits(xml.as_bytes())?;
    if xml.contains("<!DOCTYPE") || xml.contains("<!ENTITY") {
        return Err(VoucherError::Doctype);
    }
    let doc = roxmltree::Document::parse(xml).map_err(|e| match e {
        roxmltree::Error::DtdDetected => VoucherError::Doctype,
        e => VoucherError::Xml(e.to_string()),
    })?;
    let root = doc.root_element();
    let is = |n: roxmltree::Node<'_, '_>, name: &str| n.is_element() && n.tag_name().name() == name && n.tag_name().namespace() == Some(DSIG_NS);
    if !is(root, "Signature") {
        return Err(VoucherError::Structure("the document element is not a dsig:Signature".into()));
    }
    let signed_info = root.children().find(|c| is(*c, "SignedInfo")).ok_or_else(|| VoucherError::Structure("no SignedInfo".into()))?;
    let alg = |n: roxmltree::Node<'_, '_>| n.attribute("Algorithm").unwrap_or("").to_string();
    let mut sig_method = String::new();
    let mut refs = Vec::new();
    for c in signed_info.children().filter(|c| c.is_element()) {
        match c.tag_name().name() {
            "CanonicalizationMethod" if alg(c) != C14N => return Err(VoucherError::Algorithm(alg(c))),
            "SignatureMethod" => {
                sig_method = alg(c);
                if ![RSA_SHA1, RSA_SHA256, DSA_SHA1].contains(&sig_method.as_str()) {
                    return Err(VoucherError::Algorithm(sig_method));
                }
            }
            "Reference" => {
                let uri = c.attribute("URI").unwrap_or("");
                let id = uri.strip_prefix('#').filter(|i| !i.is_empty() && !i.contains(['#', '/', '(']));
                let Some(id) = id else { return Err(VoucherError::ExternalReference(uri.into())) };
                for d in c.descendants().filter(|d| d.is_element()) {
                    match d.tag_name().name() {
                        "Transform" if alg(d) != C14N => return Err(VoucherError::Algorithm(alg(d))),
                        "DigestMethod" if ![SHA1, SHA256].contains(&alg(d).as_str()) => return Err(VoucherError::Algorithm(alg(d))),
                        _ => {}
                    }
                }
                refs.push(id.to_string());
            }
            _ => {}
        }
    }
    if refs.is_empty() {
        return Err(VoucherError::Structure("SignedInfo has no Reference".into()));
    }
    if refs.len() > MAX_REFERENCES {
        return Err(VoucherError::TooManyReferences { count: refs.len(), limit: MAX_REFERENCES });
    }
    // Every Id once; every Option inside an Object (child of Signature) that is referenced.
    let mut ids = std::collections::HashSet::new();
    for n in doc.descendants().filter(|n| n.is_element()) {
        for a in n.attributes().filter(|a| a.name().eq_ignore_ascii_case("id")) {
            if !ids.insert(a.value().to_string()) {
                return Err(VoucherError::DuplicateId(a.value().into()));
            }
        }
        if n.tag_name().name() == "Option" {
            let obj = n.parent().filter(|p| is(*p, "Object") && p.parent() == Some(root));
            let signed = obj.and_then(|o| o.attribute("Id")).is_some_and(|id| refs.iter().any(|r| r == id));
            if !signed {
                return Err(VoucherError::UnsignedOption);
            }
        }
    }
    let has_cert =
        root.children().filter(|c| is(*c, "KeyInfo")).flat_map(|k| k.descendants()).any(|d| d.is_element() && d.tag_name().name() == "X509Certificate");
    if !has_cert {
        return Err(VoucherError::NoTrustedKey);
    }
    let certs = certs_in(&doc);
    if certs.len() > MAX_CERTIFICATES {
        return Err(VoucherError::TooManyCertificates { count: certs.len(), limit: MAX_CERTIFICATES });
    }
    Ok((sig_method, refs, certs))
}

/// Subject of the first X509Certificate in KeyInfo, for display.
pub fn signer_subject(certs: &[Vec<u8>]) -> Option<String> {
    use der::Decode;
    let c = x509_cert::Certificate::from_der(certs.first()?).ok()?;
    Some(c.tbs_certificate.subject.to_string())
}

/// The one certificate among `certs` that issued none of the others (the
/// signer, with its chain beside it); None when that is ambiguous.
pub fn leaf_of(certs: &[Vec<u8>]) -> Option<&Vec<u8>> {
    use der::Decode;
    let parsed: Vec<x509_cert::Certificate> = certs.iter().map(|d| x509_cert::Certificate::from_der(d)).collect::<Result<_, _>>().ok()?;
    let issues_another = |i: usize| {
        let c = &parsed[i].tbs_certificate;
        parsed.iter().enumerate().any(|(j, o)| j != i && o.tbs_certificate.issuer == c.subject && o.tbs_certificate.subject != c.subject)
    };
    let mut leaves = (0..parsed.len()).filter(|&i| !issues_another(i));
    match (leaves.next(), leaves.next()) {
        (Some(i), None) => Some(&certs[i]),
        _ => None,
    }
}

/// Accept raw XML or its Base64 (the SetVouchers wire form, C.3).
/// Larger than [`MAX_VOUCHER_BYTES`] is refused before anything is copied.
pub fn decode_wire(input: &[u8]) -> Result<Vec<u8>, VoucherError> {
    use base64::Engine;
    use foundation::XmlLimitError::TooLarge;
    let trimmed = input.iter().position(|c| !c.is_ascii_whitespace()).map(|i| &input[i..]).unwrap_or(input);
    if trimmed.starts_with(b"<") {
        if trimmed.len() > MAX_VOUCHER_BYTES {
            return Err(VoucherError::Limit(TooLarge { size: trimmed.len(), limit: MAX_VOUCHER_BYTES }));
        }
        return Ok(trimmed.to_vec());
    }
    let b64_len = input.iter().filter(|c| !c.is_ascii_whitespace()).count();
    if b64_len > MAX_VOUCHER_BYTES.div_ceil(3) * 4 {
        return Err(VoucherError::Limit(TooLarge { size: b64_len / 4 * 3, limit: MAX_VOUCHER_BYTES }));
    }
    let clean: Vec<u8> = input.iter().copied().filter(|c| !c.is_ascii_whitespace()).collect();
    base64::engine::general_purpose::STANDARD.decode(clean).map_err(|e| VoucherError::Base64(e.to_string()))
}

/// The Options, read from exactly the bytes each Reference digested.
pub fn options_from_digested(digested: &[(String, Vec<u8>)], nrefs: usize) -> Result<Vec<VoucherOption>, VoucherError> {
    if digested.len() != nrefs {
        return Err(VoucherError::BadSignature("not every Reference was processed".into()));
    }
    let mut options = Vec::new();
    for (uri, bytes) in digested {
        let text = std::str::from_utf8(bytes).map_err(|_| VoucherError::Structure("digested bytes are not UTF-8".into()))?;
        check_limits(bytes)?;
        let d = roxmltree::Document::parse(text).map_err(|e| VoucherError::Structure(format!("digested node {uri}: {e}")))?;
        let obj = d.root_element();
        let want = uri.trim_start_matches('#');
        if obj.tag_name().name() != "Object" || obj.tag_name().namespace() != Some(DSIG_NS) || obj.attribute("Id") != Some(want) {
            return Err(VoucherError::Structure(format!("Reference {uri} does not cover a dsig:Object with that Id")));
        }
        let opts: Vec<_> = obj.children().filter(|c| c.is_element()).collect();
        match opts.as_slice() {
            [o] if o.tag_name().name() == "Option" && o.tag_name().namespace().unwrap_or("").is_empty() => options.push(VoucherOption::from_element(*o)?),
            _ => return Err(VoucherError::Structure(format!("Object {want} must hold exactly one Option"))),
        }
    }
    Ok(options)
}

/// Read a voucher's Options and signer WITHOUT verifying anything (for
/// `inspect`); never act on this.
pub fn inspect(input: &[u8]) -> Result<VerifiedVoucher, VoucherError> {
    let xml_bytes = decode_wire(input)?;
    let xml = std::str::from_utf8(&xml_bytes).map_err(|_| VoucherError::Xml("not UTF-8".into()))?;
    let (signature_method, _, _) = precheck(xml).or_else(|e| match e {
        // Show what is there even when the key is not an X.509 certificate.
        VoucherError::NoTrustedKey => Ok((String::new(), Vec::new(), Vec::new())),
        e => Err(e),
    })?;
    let doc = roxmltree::Document::parse(xml).map_err(|e| VoucherError::Xml(e.to_string()))?;
    let certs = certs_in(&doc);
    let options = doc
        .descendants()
        .filter(|n| n.is_element() && n.tag_name().name() == "Option" && n.tag_name().namespace().unwrap_or("").is_empty())
        .map(VoucherOption::from_element)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(VerifiedVoucher { options, signer: signer_subject(&certs), signature_method })
}
