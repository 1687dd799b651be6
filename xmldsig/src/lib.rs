//! Enveloping XML Signatures over Options (C.2, C.3, Figure 6) with
//! libxmlsec1: [`Verifier`] and [`sign`], under the profile described in
//! [`vouchers::dsig`] (whose pure parts — limits, pre-check, Options from
//! digested bytes — this crate uses).
//!
//! Bindings: the `xmlsec` crate (0.3) with `libxml`. Its safe API cannot
//! check SignedInfo before the References or hand out what a Reference
//! digested, so this crate uses `xmlsec::bindings` (plus one missing
//! declaration) directly; C14N, digests and the signature transforms are
//! libxmlsec1's, not ours: this crate orders them (SignedInfo's
//! SignatureValue with the path-validated key first, then each Reference).
//!
//! Only the `cpekit-xmldsig` helper binary (src/main.rs) links this in a
//! product; `cpekit` runs it as a process ([`vouchers::helper`]).

use std::ffi::c_void;
use std::ptr::{null, null_mut};

use libxml::parser::{Parser, ParserOptions};
use vouchers::dsig::{check_limits, leaf_of, options_from_digested, precheck, signer_subject, C14N, DSIG_NS, RSA_SHA1, RSA_SHA256, SHA1, SHA256};
use vouchers::limits::MAX_REFERENCES;
use vouchers::option::{escape, VoucherOption};
use vouchers::{SignAlgorithm, VerifiedVoucher, VoucherError};
use xmlsec::bindings as b;

pub use vouchers::dsig::decode_wire;

type ErrorsCallback = unsafe extern "C" fn(
    file: *const std::ffi::c_char,
    line: std::ffi::c_int,
    func: *const std::ffi::c_char,
    error_object: *const std::ffi::c_char,
    error_subject: *const std::ffi::c_char,
    reason: std::ffi::c_int,
    msg: *const std::ffi::c_char,
);

extern "C" {
    // errors.h; not in the xmlsec crate's generated bindings.
    fn xmlSecErrorsSetCallback(callback: Option<ErrorsCallback>);
}
/// libxmlsec1 prints every failure to stderr by default; our errors carry
/// the reason instead.
unsafe extern "C" fn quiet(
    _: *const std::ffi::c_char,
    _: std::ffi::c_int,
    _: *const std::ffi::c_char,
    _: *const std::ffi::c_char,
    _: *const std::ffi::c_char,
    _: std::ffi::c_int,
    _: *const std::ffi::c_char,
) {
}
fn init() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    // The crate initialises libxml2/xmlsec/OpenSSL once, on first context.
    drop(xmlsec::XmlSecSignatureContext::new());
    // SAFETY: installs a callback that ignores its arguments.
    ONCE.call_once(|| unsafe { xmlSecErrorsSetCallback(Some(quiet)) });
}

/// libxml2 reads the bytes as UTF-8 whatever an XML declaration says, so it
/// sees the same markup as roxmltree and the limits scan (an `encoding` of,
/// say, UTF-7 would otherwise turn their text into libxml2's elements).
fn parse_libxml(xml: &[u8]) -> Result<libxml::tree::Document, VoucherError> {
    check_limits(xml)?;
    let opts = ParserOptions { recover: false, no_net: true, no_error: true, no_warning: true, encoding: Some("UTF-8"), ..Default::default() };
    Parser::default().parse_string_with_options(xml, opts).map_err(|e| VoucherError::Xml(format!("{e:?}")))
}

/// Register `Id` attributes as XML IDs so `#option0` resolves.
unsafe fn add_ids(doc: &libxml::tree::Document) {
    let id = b"Id\0";
    let mut ids: [*const b::xmlChar; 2] = [id.as_ptr(), null()];
    let root = b::xmlDocGetRootElement(doc.doc_ptr() as b::xmlDocPtr);
    b::xmlSecAddIDs(doc.doc_ptr() as b::xmlDocPtr, root, ids.as_mut_ptr());
}

/// Is `n` the dsig element `name` (NUL-terminated)? False for null.
unsafe fn is_dsig(n: b::xmlNodePtr, name: &[u8]) -> bool {
    const NS: &[u8] = b"http://www.w3.org/2000/09/xmldsig#\0";
    !n.is_null() && b::xmlSecCheckNodeName(n, name.as_ptr(), NS.as_ptr()) != 0
}

/// The parts of an enveloping Signature as libxml2 parsed it, their order
/// checked once, before any key or digest is used, as `xmlSecDSigCtxVerify`
/// checks it (xmldsig.c, 1.2.37; XML-DSig 4.1, 4.3): Signature is
/// SignedInfo, SignatureValue, KeyInfo?, Object*; SignedInfo is
/// CanonicalizationMethod, SignatureMethod, Reference+.
struct SignatureNodes {
    signed_info: b::xmlNodePtr,
    value: b::xmlNodePtr,
    c14n: b::xmlNodePtr,
    method: b::xmlNodePtr,
    references: Vec<b::xmlNodePtr>,
}

impl SignatureNodes {
    /// `references`: how many References the pre-check counted (at most
    /// [`MAX_REFERENCES`]); libxml2 must see the same number.
    ///
    /// SAFETY: `doc` must be live; the pointers are valid while it is.
    unsafe fn read(doc: &libxml::tree::Document, references: usize) -> Result<SignatureNodes, VoucherError> {
        let structure = |what: &str| VoucherError::Structure(format!("{what} (XML-DSig 4.1, 4.3)"));
        // Only called on a node found non-null by is_dsig.
        let next = |n: b::xmlNodePtr| b::xmlSecGetNextElementNode((*n).next);
        let root = b::xmlDocGetRootElement(doc.doc_ptr() as b::xmlDocPtr);
        if !is_dsig(root, b"Signature\0") {
            return Err(structure("the document element must be Signature"));
        }
        let signed_info = b::xmlSecGetNextElementNode((*root).children);
        if !is_dsig(signed_info, b"SignedInfo\0") || !is_dsig(next(signed_info), b"SignatureValue\0") {
            return Err(structure("Signature must start with SignedInfo and SignatureValue"));
        }
        let value = next(signed_info);
        let mut cur = next(value);
        if is_dsig(cur, b"KeyInfo\0") {
            cur = next(cur);
        }
        while is_dsig(cur, b"Object\0") {
            cur = next(cur);
        }
        if !cur.is_null() {
            return Err(structure("Signature may hold only SignedInfo, SignatureValue, KeyInfo and Objects"));
        }
        let c14n = b::xmlSecGetNextElementNode((*signed_info).children);
        if !is_dsig(c14n, b"CanonicalizationMethod\0") || !is_dsig(next(c14n), b"SignatureMethod\0") {
            return Err(structure("SignedInfo must start with CanonicalizationMethod and SignatureMethod"));
        }
        let method = next(c14n);
        let mut refs = Vec::with_capacity(references);
        let mut cur = next(method);
        while is_dsig(cur, b"Reference\0") {
            if refs.len() == references {
                return Err(structure("SignedInfo holds more References than the pre-check counted"));
            }
            refs.push(cur);
            cur = next(cur);
        }
        if refs.len() != references || refs.is_empty() || !cur.is_null() {
            return Err(structure("SignedInfo must end with its References"));
        }
        Ok(SignatureNodes { signed_info, value, c14n, method, references: refs })
    }
}

/// Does the SignatureValue verify over the canonical SignedInfo with `key`?
/// The same transforms libxmlsec1's xmlSecDSigCtxVerify runs (xmldsig.c:
/// CanonicalizationMethod, then SignatureMethod in verify mode, over the
/// SignedInfo node set), but without first dereferencing and digesting
/// every Reference. A key that does not suit the SignatureMethod is
/// [`VoucherError::NoTrustedKey`], as libxmlsec1 has it.
///
/// SAFETY: `doc` and `key` must be live, `nodes` read from `doc`; nothing
/// here outlives the call.
unsafe fn signed_info_verifies(
    doc: &libxml::tree::Document,
    nodes: &SignatureNodes,
    key: b::xmlSecKeyPtr,
    suits: &std::cell::RefCell<std::collections::HashSet<(usize, usize)>>,
) -> Result<bool, VoucherError> {
    let SignatureNodes { signed_info, value, c14n, method, .. } = *nodes;
    struct TransformCtx(b::xmlSecTransformCtxPtr);
    impl Drop for TransformCtx {
        fn drop(&mut self) {
            // SAFETY: created by xmlSecTransformCtxCreate, destroyed once.
            unsafe { b::xmlSecTransformCtxDestroy(self.0) }
        }
    }
    let ctx = b::xmlSecTransformCtxCreate();
    if ctx.is_null() {
        return Err(VoucherError::Xmlsec("cannot create a transform context".into()));
    }
    let _g = TransformCtx(ctx);
    if b::xmlSecTransformCtxNodeRead(ctx, c14n, b::xmlSecTransformUsageC14NMethod).is_null() {
        return Err(VoucherError::Xmlsec("cannot read CanonicalizationMethod".into()));
    }
    let sign = b::xmlSecTransformCtxNodeRead(ctx, method, b::xmlSecTransformUsageSignatureMethod);
    if sign.is_null() {
        return Err(VoucherError::Xmlsec("cannot read SignatureMethod".into()));
    }
    (*sign).operation = b::xmlSecTransformOperation_xmlSecTransformOperationVerify;
    let pair = (key as usize, (*sign).id as usize);
    if !suits.borrow().contains(&pair) {
        let mut req: b::xmlSecKeyReq = std::mem::zeroed();
        if b::xmlSecKeyReqInitialize(&mut req) < 0 {
            return Err(VoucherError::Xmlsec("cannot initialise a key requirement".into()));
        }
        let suited = b::xmlSecTransformSetKeyReq(sign, &mut req) >= 0 && b::xmlSecKeyMatch(key, null(), &mut req) == 1;
        b::xmlSecKeyReqFinalize(&mut req);
        if !suited {
            return Err(VoucherError::NoTrustedKey);
        }
        suits.borrow_mut().insert(pair);
    }
    if b::xmlSecTransformSetKey(sign, key) < 0 {
        return Err(VoucherError::Xmlsec("cannot set the signer's key".into()));
    }
    let nodes = b::xmlSecNodeSetGetChildren(doc.doc_ptr() as b::xmlDocPtr, signed_info, 1, 0);
    if nodes.is_null() {
        return Err(VoucherError::Xmlsec("cannot select SignedInfo".into()));
    }
    // The transforms never destroy their input node set (transforms.c).
    let executed = b::xmlSecTransformCtxXmlExecute(ctx, nodes);
    b::xmlSecNodeSetDestroy(nodes);
    if executed < 0 {
        return Err(VoucherError::Xmlsec("cannot canonicalise SignedInfo".into()));
    }
    if b::xmlSecTransformVerifyNodeContent(sign, value, ctx) < 0 {
        return Err(VoucherError::BadSignature("the SignatureValue is not Base64 or not a signature value for the signer's key".into()));
    }
    Ok((*sign).status == b::xmlSecTransformStatus_xmlSecTransformStatusOk)
}
/// The References of SignedInfo, dereferenced, transformed, digested and
/// compared by libxmlsec1 (`xmlSecDSigReferenceCtxProcessNode`, as
/// `xmlSecDSigCtxVerify` runs it: xmldsig.c, 1.2.37), in document order,
/// with the bytes each digested. Run once [`signed_info_verifies`] has
/// accepted the SignatureValue over SignedInfo: `xmlSecDSigCtxVerify` would
/// canonicalise SignedInfo and check the signature a second time, after
/// the References, which is what issue 10 had us check first (the order
/// of the parts it checks is [`SignatureNodes::read`]'s). Only
/// same-document References are dereferenced; no Manifest is read.
///
/// SAFETY: `doc` must be live, `nodes` read from it; nothing here outlives
/// the call.
unsafe fn digest_references(doc: &libxml::tree::Document, nodes: &SignatureNodes) -> Result<Vec<(String, Vec<u8>)>, VoucherError> {
    struct Ctx(b::xmlSecDSigCtxPtr);
    impl Drop for Ctx {
        fn drop(&mut self) {
            // SAFETY: created by xmlSecDSigCtxCreate, destroyed once; it
            // destroys the reference contexts in its list.
            unsafe { b::xmlSecDSigCtxDestroy(self.0) }
        }
    }
    // The reference contexts take their settings from a signature context.
    let ctx = b::xmlSecDSigCtxCreate(null_mut());
    if ctx.is_null() {
        return Err(VoucherError::Xmlsec("cannot create a signature context".into()));
    }
    let _g = Ctx(ctx);
    (*ctx).operation = b::xmlSecTransformOperation_xmlSecTransformOperationVerify;
    // Keep what each Reference digested: the Options are read from it.
    (*ctx).flags |= b::XMLSEC_DSIG_FLAGS_STORE_SIGNEDINFO_REFERENCES;
    (*ctx).enabledReferenceUris = b::xmlSecTransformUriTypeSameDocument as _;
    add_ids(doc);
    let mut digested = Vec::with_capacity(nodes.references.len());
    for &node in &nodes.references {
        let r = b::xmlSecDSigReferenceCtxCreate(ctx, b::xmlSecDSigReferenceOrigin_xmlSecDSigReferenceOriginSignedInfo);
        if r.is_null() {
            return Err(VoucherError::Xmlsec("cannot create a reference context".into()));
        }
        if b::xmlSecPtrListAdd(&mut (*ctx).signedInfoReferences, r as *mut c_void) < 0 {
            b::xmlSecDSigReferenceCtxDestroy(r);
            return Err(VoucherError::Xmlsec("cannot keep a reference context".into()));
        }
        if b::xmlSecDSigReferenceCtxProcessNode(r, node) < 0 {
            return Err(VoucherError::BadSignature("a Reference cannot be dereferenced or digested".into()));
        }
        if (*r).status != b::xmlSecDSigStatus_xmlSecDSigStatusSucceeded {
            return Err(VoucherError::BadSignature("a digest does not match".into()));
        }
        let buf = b::xmlSecDSigReferenceCtxGetPreDigestBuffer(r);
        if buf.is_null() {
            return Err(VoucherError::Xmlsec("the digested bytes were not kept".into()));
        }
        let uri = if (*r).uri.is_null() { String::new() } else { std::ffi::CStr::from_ptr((*r).uri as *const _).to_string_lossy().into_owned() };
        let data = b::xmlSecBufferGetData(buf);
        let size = b::xmlSecBufferGetSize(buf) as usize;
        digested.push((uri, if data.is_null() { Vec::new() } else { std::slice::from_raw_parts(data, size).to_vec() }));
    }
    Ok(digested)
}

/// A key libxmlsec1 made from a certificate, owned by the [`Verifier`]'s cache.
struct CachedKey(b::xmlSecKeyPtr);

impl Drop for CachedKey {
    fn drop(&mut self) {
        // SAFETY: created by xmlSecOpenSSLAppKeyLoadMemory, owned here only
        // (a signature context borrowing it gives it back before it is destroyed).
        unsafe { b::xmlSecKeyDestroy(self.0) }
    }
}

/// At most this many signer keys are kept (one per trusted signer certificate).
const KEY_CACHE_MAX: usize = 64;
/// A verifier of vouchers against trust anchors; reuse it: it keeps what
/// it learnt about the signers it has seen (below).
pub struct Verifier {
    anchors: Vec<x509_cert::Certificate>,
    /// Certificate paths already validated to our anchors: (leaf + KeyInfo
    /// certificates) → the validity window of every certificate involved.
    chains: std::cell::RefCell<std::collections::HashMap<Vec<Vec<u8>>, Window>>,
    /// libxmlsec1 keys of signer certificates whose path validated, by DER.
    /// Decoding the KeyInfo certificate into a key is most of what
    /// libxmlsec1 spends on a voucher (OpenSSL 3 decoder set-up, ~55 % of a
    /// verification); a device sees the same few signers again and again.
    keys: std::cell::RefCell<std::collections::HashMap<Vec<u8>, CachedKey>>,
    /// What the KeyInfo certificates of a voucher say, by their DER: the
    /// signer among them and its subject. Decoding them (and naming the
    /// subject's attributes) for each voucher cost a sixth of a
    /// verification; a device's vouchers carry the same few sets.
    signers: std::cell::RefCell<std::collections::HashMap<Vec<Vec<u8>>, SignerCerts>>,
    /// (cached key, SignatureMethod transform class) pairs found to suit
    /// each other: libxmlsec1's key match asks OpenSSL for the key's size
    /// each time. Emptied with `keys` (the pointers name its keys).
    suits: std::cell::RefCell<std::collections::HashSet<(usize, usize)>>,
}

/// The certificates of one KeyInfo: which issued none of the others (None:
/// ambiguous, each is tried) and the first one's subject, for display.
#[derive(Clone)]
struct SignerCerts {
    leaf: Option<usize>,
    subject: Option<String>,
}

/// The span of time in which every certificate of a validated path is valid.
type Window = (std::time::SystemTime, std::time::SystemTime);

impl Verifier {
    /// Trust anchors as PEM certificates (one or more per entry).
    pub fn new(anchors_pem: &[Vec<u8>]) -> Result<Verifier, VoucherError> {
        init();
        let anchors: Vec<x509_cert::Certificate> = anchors_pem
            .iter()
            .map(|p| match pkgfmt::signature::load_certs_pem(p) {
                Ok(certs) if certs.is_empty() => Err(VoucherError::Key("a trust anchor is not a PEM certificate".into())),
                r => r.map_err(|e| VoucherError::Key(e.to_string())),
            })
            .collect::<Result<Vec<_>, _>>()?
            .into_iter()
            .flatten()
            .collect();
        Ok(Verifier { anchors, chains: Default::default(), keys: Default::default(), signers: Default::default(), suits: Default::default() })
    }

    /// Verify a voucher (XML or Base64); `at` is the time for certificate
    /// validity (None: now).
    pub fn verify(&self, input: &[u8], at: Option<time::OffsetDateTime>) -> Result<VerifiedVoucher, VoucherError> {
        let xml_bytes = decode_wire(input)?;
        let xml = std::str::from_utf8(&xml_bytes).map_err(|_| VoucherError::Xml("not UTF-8".into()))?;
        let (signature_method, refs, certs) = precheck(xml)?;
        let when = at.map(std::time::SystemTime::from).unwrap_or_else(std::time::SystemTime::now);
        let doc = parse_libxml(xml.as_bytes())?;
        // SAFETY: `doc` lives until the end of the call, and with it the
        // nodes read from it.
        let nodes = unsafe { SignatureNodes::read(&doc, refs.len())? };
        // The signer's key (path-validated, cached) verifies the
        // SignatureValue over SignedInfo: only then are References digested.
        self.check_signed_info(&doc, &nodes, &certs, when)?;
        let digested = unsafe { digest_references(&doc, &nodes)? };
        let options = options_from_digested(&digested, refs.len())?;
        Ok(VerifiedVoucher { options, signer: self.signer_certs(&certs).subject, signature_method })
    }
}

impl Verifier {
    /// Was SignedInfo signed by a trusted signer? The certificate in KeyInfo
    /// that issued none of the others (or, when that is ambiguous, each
    /// certificate in turn) must chain to our anchors, and its key must
    /// verify the SignatureValue over SignedInfo. No Reference is read or
    /// digested here.
    fn check_signed_info(
        &self,
        doc: &libxml::tree::Document,
        nodes: &SignatureNodes,
        certs: &[Vec<u8>],
        when: std::time::SystemTime,
    ) -> Result<(), VoucherError> {
        let candidates: Vec<&Vec<u8>> = match self.signer_certs(certs).leaf {
            Some(leaf) => vec![&certs[leaf]],
            None => certs.iter().collect(),
        };
        let mut first_error = None;
        for cert in candidates {
            let tried = self.check_chain(cert.clone(), certs.to_vec(), when).and_then(|()| {
                let key = self.key_for(cert);
                if key.is_null() {
                    return Err(VoucherError::NoTrustedKey);
                }
                // SAFETY: `doc` and `key` are live; see signed_info_verifies.
                match unsafe { signed_info_verifies(doc, nodes, key, &self.suits)? } {
                    true => Ok(()),
                    false => Err(VoucherError::BadSignature("the SignatureValue does not verify over SignedInfo".into())),
                }
            });
            match tried {
                Ok(()) => return Ok(()),
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        Err(first_error.unwrap_or(VoucherError::NoTrustedKey))
    }

    /// [`leaf_of`] and [`signer_subject`] of a KeyInfo's certificates, cached.
    fn signer_certs(&self, certs: &[Vec<u8>]) -> SignerCerts {
        if let Some(s) = self.signers.borrow().get(certs) {
            return s.clone();
        }
        let s = SignerCerts { leaf: leaf_of(certs).and_then(|l| certs.iter().position(|c| c == l)), subject: signer_subject(certs) };
        let mut signers = self.signers.borrow_mut();
        if signers.len() >= KEY_CACHE_MAX {
            signers.clear();
        }
        signers.insert(certs.to_vec(), s.clone());
        s
    }

    /// The cached libxmlsec1 key of a (path-validated) signer certificate;
    /// null if libxmlsec1 cannot make one.
    fn key_for(&self, cert_der: &[u8]) -> b::xmlSecKeyPtr {
        if let Some(k) = self.keys.borrow().get(cert_der) {
            return k.0;
        }
        // SAFETY: libxmlsec1 copies the DER; the key is owned by the cache.
        let key = unsafe {
            b::xmlSecOpenSSLAppKeyLoadMemory(
                cert_der.as_ptr(),
                cert_der.len() as u32,
                b::xmlSecKeyDataFormat_xmlSecKeyDataFormatCertDer,
                null(),
                null_mut(),
                null_mut(),
            )
        };
        if key.is_null() {
            return null_mut();
        }
        let mut keys = self.keys.borrow_mut();
        if keys.len() >= KEY_CACHE_MAX {
            self.suits.borrow_mut().clear();
            keys.clear();
        }
        keys.insert(cert_der.to_vec(), CachedKey(key));
        key
    }

    /// Path validation of the verifying certificate to our anchors, cached:
    /// a hit only needs `when` inside every involved certificate's validity.
    fn check_chain(&self, leaf: Vec<u8>, pool: Vec<Vec<u8>>, when: std::time::SystemTime) -> Result<(), VoucherError> {
        let mut key = vec![leaf];
        key.extend(pool);
        if let Some((from, to)) = self.chains.borrow().get(&key) {
            if *from <= when && when <= *to {
                return Ok(());
            }
        }
        // The same path rules as a package signature (one function for both).
        let opts = pkgfmt::signature::VerifyOptions { now: Some(when), ..Default::default() };
        pkgfmt::signature::validate_chain(&key[0], &key[1..], &self.anchors, &opts).map_err(|e| VoucherError::Untrusted(e.to_string()))?;
        use der::Decode;
        let mut window = (std::time::UNIX_EPOCH, std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(u64::MAX / 4));
        let certs = key.iter().filter_map(|d| x509_cert::Certificate::from_der(d).ok()).chain(self.anchors.iter().cloned());
        for c in certs {
            let v = &c.tbs_certificate.validity;
            window.0 = window.0.max(v.not_before.to_system_time());
            window.1 = window.1.min(v.not_after.to_system_time());
        }
        self.chains.borrow_mut().insert(key, window);
        Ok(())
    }
}

/// Verify one voucher (XML or Base64) against PEM trust anchors. For many
/// vouchers, build one [`Verifier`] and reuse it.
pub fn verify(input: &[u8], anchors_pem: &[Vec<u8>], at: Option<time::OffsetDateTime>) -> Result<VerifiedVoucher, VoucherError> {
    Verifier::new(anchors_pem)?.verify(input, at)
}
/// Sign `options` into one voucher: an enveloping Signature with one
/// Reference and one Object per Option (Figure 6), the signer certificate
/// and `chain_pem` certificates in KeyInfo/X509Data.
pub fn sign(options: &[VoucherOption], key_pem: &[u8], cert_pem: &[u8], chain_pem: &[&[u8]], alg: SignAlgorithm) -> Result<String, VoucherError> {
    sign_with(options, SigningKey::Pem(key_pem), cert_pem, chain_pem, alg)
}

/// Who makes the RSA signature over the canonical SignedInfo.
pub enum SigningKey<'a> {
    /// An RSA private key (PEM), used by libxmlsec1 itself.
    Pem(&'a [u8]),
    /// A key kept elsewhere (a PKCS#11 token): given the canonical
    /// SignedInfo octets, return the RSASSA-PKCS1-v1_5 signature with the
    /// [`SignAlgorithm`]'s digest. libxmlsec1 prepares the signature with a
    /// throw-away key (its SignatureValue is then replaced), so that the
    /// References, digests and canonical form are exactly libxmlsec1's.
    External(&'a mut ExternalSigner<'a>),
}

/// Signs the canonical SignedInfo octets; an error is a message.
pub type ExternalSigner<'a> = dyn FnMut(&[u8]) -> Result<Vec<u8>, String> + 'a;

/// [`sign`] with the signature made by `key`.
pub fn sign_with(options: &[VoucherOption], key: SigningKey<'_>, cert_pem: &[u8], chain_pem: &[&[u8]], alg: SignAlgorithm) -> Result<String, VoucherError> {
    if options.is_empty() {
        return Err(VoucherError::Structure("a voucher needs at least one Option".into()));
    }
    // Nothing that verify() would refuse.
    if options.len() > MAX_REFERENCES {
        return Err(VoucherError::TooManyReferences { count: options.len(), limit: MAX_REFERENCES });
    }
    let (sm, dm) = match alg {
        SignAlgorithm::RsaSha1 => (RSA_SHA1, SHA1),
        SignAlgorithm::RsaSha256 => (RSA_SHA256, SHA256),
    };
    let mut t = format!(
        "<Signature xmlns=\"{DSIG_NS}\"><SignedInfo><CanonicalizationMethod Algorithm=\"{C14N}\"></CanonicalizationMethod><SignatureMethod Algorithm=\"{sm}\"></SignatureMethod>"
    );
    for i in 0..options.len() {
        t.push_str(&format!(
            "<Reference URI=\"#option{i}\"><Transforms><Transform Algorithm=\"{C14N}\"></Transform></Transforms><DigestMethod Algorithm=\"{dm}\"></DigestMethod><DigestValue></DigestValue></Reference>"
        ));
    }
    t.push_str("</SignedInfo><SignatureValue></SignatureValue><KeyInfo><X509Data></X509Data></KeyInfo>");
    for (i, o) in options.iter().enumerate() {
        t.push_str(&format!("<dsig:Object xmlns=\"\" xmlns:dsig=\"{DSIG_NS}\" Id=\"option{}\">{}</dsig:Object>", escape(&i.to_string()), o.to_xml()));
    }
    t.push_str("</Signature>");
    init();
    let doc = parse_libxml(t.as_bytes())?;
    // SAFETY: as in `verify`; the key is owned by the context once set.
    unsafe {
        add_ids(&doc);
        let (key, mut external) = match key {
            SigningKey::Pem(key_pem) => {
                let k = b::xmlSecOpenSSLAppKeyLoadMemory(
                    key_pem.as_ptr(),
                    key_pem.len() as u32,
                    b::xmlSecKeyDataFormat_xmlSecKeyDataFormatPem,
                    null(),
                    null_mut(),
                    null_mut(),
                );
                (k, None)
            }
            SigningKey::External(f) => (b::xmlSecKeyGenerate(b::xmlSecOpenSSLKeyDataRsaGetKlass(), 2048, b::xmlSecKeyDataTypePrivate), Some(f)),
        };
        if key.is_null() {
            return Err(VoucherError::Key(if external.is_some() { "cannot make the placeholder key" } else { "cannot load the private key (PEM)" }.into()));
        }
        for c in std::iter::once(cert_pem).chain(chain_pem.iter().copied()) {
            if b::xmlSecOpenSSLAppKeyCertLoadMemory(key, c.as_ptr(), c.len() as u32, b::xmlSecKeyDataFormat_xmlSecKeyDataFormatPem) < 0 {
                b::xmlSecKeyDestroy(key);
                return Err(VoucherError::Key("cannot load a certificate (PEM) for the key".into()));
            }
        }
        let ctx = b::xmlSecDSigCtxCreate(null_mut());
        if ctx.is_null() {
            b::xmlSecKeyDestroy(key);
            return Err(VoucherError::Xmlsec("cannot create a signature context".into()));
        }
        (*ctx).signKey = key;
        if external.is_some() {
            // Keep the canonical SignedInfo that was signed.
            (*ctx).flags |= b::XMLSEC_DSIG_FLAGS_STORE_SIGNATURE;
        }
        let root = b::xmlDocGetRootElement(doc.doc_ptr() as b::xmlDocPtr);
        let rc = b::xmlSecDSigCtxSign(ctx, root);
        if rc < 0 {
            b::xmlSecDSigCtxDestroy(ctx);
            return Err(VoucherError::Xmlsec("signing failed (does the key match the certificate?)".into()));
        }
        if let Some(f) = external.as_mut() {
            let buf = b::xmlSecDSigCtxGetPreSignBuffer(ctx);
            let node = (*ctx).signValueNode;
            if buf.is_null() || node.is_null() {
                b::xmlSecDSigCtxDestroy(ctx);
                return Err(VoucherError::Xmlsec("no SignedInfo to sign".into()));
            }
            let signed_info = std::slice::from_raw_parts(b::xmlSecBufferGetData(buf), b::xmlSecBufferGetSize(buf) as usize).to_vec();
            let value = match f(&signed_info) {
                Ok(sig) => {
                    use base64::Engine;
                    base64::engine::general_purpose::STANDARD.encode(sig)
                }
                Err(e) => {
                    b::xmlSecDSigCtxDestroy(ctx);
                    return Err(VoucherError::Key(e));
                }
            };
            let text = std::ffi::CString::new(value).expect("base64 has no NUL");
            b::xmlNodeSetContent(node as b::xmlNodePtr, text.as_ptr() as *const b::xmlChar);
        }
        b::xmlSecDSigCtxDestroy(ctx);
    }
    Ok(doc.to_string())
}
#[cfg(test)]
mod tests {
    use super::*;

    /// libxml2 would decode a declared UTF-7 (through iconv) and see elements
    /// where roxmltree and the limits scan see text: it must read UTF-8.
    #[test]
    fn libxml2_reads_utf8_whatever_the_declaration_says() {
        let doc = parse_libxml(br#"<?xml version="1.0" encoding="UTF-7"?><a>+ADw-b/+AD4-</a>"#).unwrap();
        let root = doc.get_root_element().unwrap();
        assert!(root.get_child_elements().is_empty(), "{}", doc.to_string());
        assert_eq!(root.get_content(), "+ADw-b/+AD4-");
    }
}

/// The in-process [`vouchers::VerifyVouchers`]: what the helper binary runs,
/// and what tests hand the agent instead of a [`vouchers::Helper`].
#[derive(Debug, Clone, Copy, Default)]
pub struct InProcess;

impl vouchers::VerifyVouchers for InProcess {
    fn verify_vouchers(
        &self,
        anchors_pem: &[Vec<u8>],
        vouchers: &[Vec<u8>],
        at: Option<time::OffsetDateTime>,
    ) -> Result<Vec<VerifiedVoucher>, vouchers::VerifyError> {
        vouchers::helper::verify_each(anchors_pem, vouchers, Verifier::new, |v, x| v.verify(x, at))
    }
}
