//! What a voucher may be, checked before anything is parsed or digested.
//!
//! An Annex C voucher is small: Figure 6 (two Options and a two-certificate
//! chain) is about 5.5 KB, 5 levels deep, with at most 3 attributes on an
//! element. The limits below leave ample room for real vouchers and keep the
//! work on a hostile one (unsigned: nothing is trusted until the signature
//! has been checked) small and linear: they are checked by a streaming scan
//! ([`foundation::XmlLimits`]) before roxmltree or libxml2 builds a tree, and
//! the References are counted before libxmlsec1 digests any.

use foundation::XmlLimits;

/// Largest voucher, in bytes of XML (after Base64 decoding, C.3). Figure 6 is
/// about 5.5 KB; this leaves room for [`MAX_REFERENCES`] Options (under 1 KB
/// each with its Reference) and [`MAX_CERTIFICATES`] certificates, and is the
/// per-voucher bound of SetVouchers (A.4.1.3) in the agent.
pub const MAX_VOUCHER_BYTES: usize = 256 * 1024;

/// Deepest element nesting. Figure 6 reaches depth 5
/// (Signature/SignedInfo/Reference/Transforms/Transform,
/// Signature/Object/Option/DeviceId/OUI, Signature/KeyInfo/X509Data/
/// X509IssuerSerial/X509IssuerName); C.3 lets an Option carry elements of its
/// own, hence the headroom. Far below the nesting that exhausts a thread's
/// stack in a recursive parser (a few thousand levels).
pub const MAX_DEPTH: usize = 32;

/// Most elements in one voucher. An Option with its dsig:Object takes 15
/// elements (Table 62, Table 63, Figure 5) and its Reference 5 (Figure 6):
/// [`MAX_REFERENCES`] Options need about 1,300; the rest is room for KeyInfo
/// and Option-specific elements (C.3).
pub const MAX_ELEMENTS: usize = 4096;

/// Most attributes (namespace declarations included) on one element. The
/// most in Figure 6 is 3 (dsig:Object: xmlns, xmlns:dsig, Id); the headroom is
/// for Option-specific elements. Keeps the parsers' pairwise duplicate-
/// attribute checks trivial.
pub const MAX_ATTRIBUTES: usize = 16;

/// Most References in SignedInfo. C.3 / Figure 6: one Reference per Option
/// (Figure 6 signs two). The spec sets no number of Options per voucher; a
/// voucher is issued for one CPE and one purchase, and 64 Options is far more
/// than one carries, while keeping what libxmlsec1 digests (each same-document
/// Reference is a canonicalisation pass over the document) small.
pub const MAX_REFERENCES: usize = 64;

/// Most X509Certificate elements. KeyInfo carries the signer's certificate
/// and its chain (Figure 6 carries 2); each may be tried as the signer and
/// each is parsed for path validation, so their number is bounded too.
pub const MAX_CERTIFICATES: usize = 16;

/// The limits on a voucher's XML, for [`XmlLimits::check`].
pub const VOUCHER_XML: XmlLimits = XmlLimits { max_bytes: MAX_VOUCHER_BYTES, max_depth: MAX_DEPTH, max_elements: MAX_ELEMENTS, max_attributes: MAX_ATTRIBUTES };
