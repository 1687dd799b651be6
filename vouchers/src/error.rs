//! Typed errors: every rejection names its reason.

/// Serialisable (tagged by variant) so that the `cpekit-xmldsig` helper
/// process hands back the very error an in-process verification returns.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, serde::Serialize, serde::Deserialize)]
#[serde(tag = "error", content = "detail", rename_all = "snake_case")]
pub enum VoucherError {
    #[error("not well-formed XML: {0}")]
    Xml(String),
    #[error("DOCTYPE or entity declarations are not allowed in a voucher")]
    Doctype,
    #[error("not a voucher: {0}")]
    Structure(String),
    #[error("duplicate Id {0:?}: every Id must be unique (signature wrapping)")]
    DuplicateId(String),
    #[error("Option outside a signed Object (signature wrapping)")]
    UnsignedOption,
    #[error("Reference URI {0:?} is not a same-document #Id reference")]
    ExternalReference(String),
    #[error("algorithm {0:?} is not allowed here")]
    Algorithm(String),
    #[error("no trusted X.509 certificate: keys are only taken from certificates chaining to a trust anchor")]
    NoTrustedKey,
    #[error("signing certificate does not chain to a configured trust anchor: {0}")]
    Untrusted(String),
    #[error("signature verification failed: {0}")]
    BadSignature(String),
    #[error("Option {field}: {problem}")]
    Field { field: String, problem: String },
    #[error("libxmlsec1: {0}")]
    Xmlsec(String),
    #[error("key or certificate: {0}")]
    Key(String),
    #[error("not Base64: {0}")]
    Base64(String),
    /// Refused by the streaming scan before any parser ran (a limit of
    /// [`crate::limits`], named in the message).
    #[error("voucher refused before parsing: {0}")]
    #[serde(with = "XmlLimitErrorDef")]
    Limit(foundation::XmlLimitError),
    #[error("SignedInfo has {count} References, more than the limit of {limit} (one per Option, C.3); none was digested")]
    TooManyReferences { count: usize, limit: usize },
    #[error("KeyInfo has {count} certificates, more than the limit of {limit}")]
    TooManyCertificates { count: usize, limit: usize },
}

impl From<foundation::XmlLimitError> for VoucherError {
    fn from(e: foundation::XmlLimitError) -> VoucherError {
        match e {
            foundation::XmlLimitError::Doctype { .. } => VoucherError::Doctype,
            e => VoucherError::Limit(e),
        }
    }
}

impl foundation::Kind for VoucherError {
    fn kind(&self) -> foundation::ErrorKind {
        use foundation::ErrorKind as K;
        match self {
            // The voucher (or the key/certificate given to sign one) cannot be read.
            VoucherError::Xml(_)
            | VoucherError::Structure(_)
            | VoucherError::Field { .. }
            | VoucherError::Base64(_)
            | VoucherError::Key(_)
            | VoucherError::Limit(_)
            | VoucherError::TooManyReferences { .. }
            | VoucherError::TooManyCertificates { .. } => K::Malformed,
            // The signature profile refused it: wrapping, foreign references or
            // algorithms, no trusted key, a bad signature.
            VoucherError::Doctype
            | VoucherError::DuplicateId(_)
            | VoucherError::UnsignedOption
            | VoucherError::ExternalReference(_)
            | VoucherError::Algorithm(_)
            | VoucherError::NoTrustedKey
            | VoucherError::Untrusted(_)
            | VoucherError::BadSignature(_) => K::VerifyFailed,
            VoucherError::Xmlsec(_) => K::Runtime,
        }
    }
}

/// [`foundation::XmlLimitError`] on the helper protocol (serde's remote derive).
#[derive(serde::Serialize, serde::Deserialize)]
#[serde(remote = "foundation::XmlLimitError", rename_all = "snake_case")]
enum XmlLimitErrorDef {
    TooLarge { size: usize, limit: usize },
    TooDeep { limit: usize, line: usize },
    TooManyElements { limit: usize, line: usize },
    TooManyAttributes { limit: usize, line: usize },
    Doctype { line: usize },
}
