//! Why a signature block, one of its signers or a key file was rejected.

use foundation::{ErrorKind, Kind};

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
    #[error("no signer #{index}: the block has {count} signer(s)")]
    NoSuchSigner { index: usize, count: usize },
    #[error("private key: {0}")]
    Key(String),
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

/// Every signature error counts as malformed input, as the `cpekit` exit
/// codes have always treated it.
impl Kind for SignatureError {
    fn kind(&self) -> ErrorKind {
        ErrorKind::Malformed
    }
}
