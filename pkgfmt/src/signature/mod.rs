//! E.5 — the signature block: one PKCS #7 (CMS) `ContentInfo` holding a
//! `SignedData` with zero or more detached signatures over "the octet
//! string formed by the header and the command list components".
//!
//! E.5 constraints, and where they are enforced:
//! * "The contentType element of the contentInfo MUST indicate type data"
//!   and "The content element ... MUST be empty": [`SignatureBlock::parse`].
//! * "The digestAlgorithm used for each signature MUST be of type SHA-1" and
//!   "The digestEncryptionAlgorithm ... MUST be of type RSA": [`SignatureBlock::verify`].
//! * "If there are no signatures ... \[it\] can be pre-computed as a fixed
//!   sequence of bytes": [`EMPTY_SIGNATURE_BLOCK`].
//! * "at least one of the signatures must be successfully validated":
//!   [`VerifyReport::is_trusted`], which also requires a path to a trust
//!   anchor chosen by the caller.
//!
//! Built on RustCrypto's `cms`, `x509-cert`, `der`, `rsa` and `sha1`. The
//! `cms` crate decodes SET OF by sorting, so the block is also walked at
//! the DER level to keep signed attributes and signer order exactly as
//! received (signatures are checked over the received bytes).

//!
//! Modules, each depending only on those listed before it:
//! [`error`](SignatureError) and `oid` (names for messages); `der_walk`
//! (raw DER elements), `key` and `pem` (key and certificate files) and `cert` (a
//! certificate with its received DER); `path` (certification path to a
//! trust anchor under [`VerifyOptions`], for packages and vouchers alike) and
//! `signer` (one SignerInfo: sign, check its signature);
//! `block` (the SignedData as received, adding signers); `verify` (every
//! signer of a block, then its path).

mod block;
mod cert;
mod der_walk;
mod error;
mod key;
mod oid;
mod path;
mod pem;
mod signer;
mod verify;

pub use block::{SignatureBlock, SignerSummary, EMPTY_SIGNATURE_BLOCK};
pub use error::SignatureError;
pub use key::load_private_key;
pub use path::{validate_chain, ChainInfo, VerifyOptions};
pub use pem::{load_certs, load_certs_pem, load_private_key_pem};
pub use signer::{RsaSha1Signer, SignOptions};
pub use verify::{SignerOutcome, VerifyReport};

/// Length of the DER TLV at the start of `bytes`; errors if it is not a
/// definite-length SEQUENCE that fits in `bytes`.
pub fn der_block_len(bytes: &[u8]) -> Result<usize, SignatureError> {
    der_walk::tlv_len(bytes)
}
