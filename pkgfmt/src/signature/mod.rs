//! E.5 — the signature block: one PKCS #7 (CMS) `ContentInfo` holding a
//! `SignedData` with zero or more detached signatures over "the octet
//! string formed by the header and the command list components".
//!
//! E.5 constraints, and where they are enforced:
//! * "The contentType element of the contentInfo MUST indicate type data"
//!   and "The content element ... MUST be empty": [`SignatureBlock::parse`].
//! * "The digestAlgorithm used for each signature MUST be of type SHA-1" and
//!   "The digestEncryptionAlgorithm ... MUST be of type RSA": [`verify`].
//! * "If there are no signatures ... [it] can be pre-computed as a fixed
//!   sequence of bytes": [`EMPTY_SIGNATURE_BLOCK`].
//! * "at least one of the signatures must be successfully validated":
//!   [`VerifyReport::is_trusted`], which also requires a path to a trust
//!   anchor chosen by the caller.
//!
//! Built on RustCrypto's `cms`, `x509-cert`, `der`, `rsa` and `sha1`. The
//! `cms` crate decodes SET OF by sorting, so the block is also walked at
//! the DER level to keep signed attributes and signer order exactly as
//! received (signatures are checked over the received bytes).

mod block;
mod der_walk;
mod path;
mod pem;
mod verify;

pub use block::{SignatureBlock, SignerSummary, EMPTY_SIGNATURE_BLOCK};
pub use path::{validate_chain, ChainInfo};
pub use pem::{load_certs_pem, load_private_key_pem};
pub use verify::{SignerOutcome, VerifyOptions, VerifyReport};

/// Length of the DER TLV at the start of `bytes`; errors if it is not a
/// definite-length SEQUENCE that fits in `bytes`.
pub fn der_block_len(bytes: &[u8]) -> Result<usize, SignatureError> {
    der_walk::tlv_len(bytes)
}

/// Why a signature block or one of its signers was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("malformed signature block: {0}")]
    Malformed(String),
    #[error("content type is {0}, not PKCS#7 signedData (E.5)")]
    NotSignedData(String),
    #[error("encapsulated content type is {0}, not data (E.5)")]
    NotData(String),
    #[error("signature is not detached: the SignedData carries content (E.5 requires it empty)")]
    NotDetached,
    #[error("digest algorithm {0} is not SHA-1 (E.5)")]
    DigestNotSha1(String),
    #[error("signature algorithm {0} is not RSA (E.5)")]
    NotRsa(String),
    #[error("signer certificate not found in the signature block")]
    SignerCertMissing,
    #[error("signer certificate does not hold an RSA key: {0}")]
    BadKey(String),
    #[error("messageDigest mismatch: the header/command list was modified after signing")]
    MessageDigestMismatch,
    #[error("signed attributes lack {0}")]
    MissingAttribute(&'static str),
    #[error("signed contentType attribute is {0}, not data")]
    ContentTypeMismatch(String),
    #[error("RSA signature invalid{0}")]
    BadSignature(&'static str),
    #[error("untrusted signer: {0}")]
    Untrusted(String),
    #[error("certificate {subject} {problem}")]
    Certificate { subject: String, problem: String },
    #[error("private key does not match certificate {0}")]
    KeyMismatch(String),
    #[error("PEM: {0}")]
    Pem(String),
    #[error("signing failed: {0}")]
    Signing(String),
}

impl From<der::Error> for SignatureError {
    fn from(e: der::Error) -> Self {
        SignatureError::Malformed(e.to_string())
    }
}

/// Display name of an OID we know, else its dotted form.
pub(crate) fn oid_name(oid: &const_oid::ObjectIdentifier) -> String {
    use const_oid::db::{rfc5911, rfc5912};
    let known = [
        (rfc5912::ID_SHA_1, "SHA-1"),
        (rfc5912::ID_SHA_256, "SHA-256"),
        (rfc5912::ID_SHA_384, "SHA-384"),
        (rfc5912::ID_SHA_512, "SHA-512"),
        (rfc5912::RSA_ENCRYPTION, "rsaEncryption"),
        (rfc5912::SHA_1_WITH_RSA_ENCRYPTION, "sha1WithRSAEncryption"),
        (rfc5912::SHA_256_WITH_RSA_ENCRYPTION, "sha256WithRSAEncryption"),
        (rfc5912::SHA_384_WITH_RSA_ENCRYPTION, "sha384WithRSAEncryption"),
        (rfc5912::SHA_512_WITH_RSA_ENCRYPTION, "sha512WithRSAEncryption"),
        (rfc5912::DSA_WITH_SHA_1, "dsaWithSHA1"),
        (rfc5912::ECDSA_WITH_SHA_256, "ecdsaWithSHA256"),
        (rfc5911::ID_DATA, "data"),
        (rfc5911::ID_SIGNED_DATA, "signedData"),
    ];
    known.iter().find(|(o, _)| o == oid).map(|(_, n)| n.to_string()).unwrap_or_else(|| oid.to_string())
}
