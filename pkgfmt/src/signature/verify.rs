//! Checking a signature block (E.5): every signer's signature over the
//! signed message, then its certification path to a caller-chosen trust
//! anchor. "At least one of the signatures must be successfully validated
//! for the recipient to consider the signed package as trusted."

use std::time::SystemTime;

use x509_cert::Certificate;

use super::block::{SignatureBlock, SignerSummary};
use super::error::SignatureError;
use super::path::{validate_path, ChainInfo, VerifyOptions};
use super::signer::RawSigner;

/// The outcome for one signer.
#[derive(Debug, Clone)]
pub struct SignerOutcome {
    /// Position of the SignerInfo in the block.
    pub index: usize,
    pub summary: SignerSummary,
    /// The path to a trust anchor, or why this signer did not validate.
    pub result: Result<ChainInfo, SignatureError>,
}

/// Per-signer results; E.5: "at least one of the signatures must be
/// successfully validated for the recipient to consider the signed package
/// as trusted".
#[derive(Debug, Clone)]
pub struct VerifyReport {
    pub signers: Vec<SignerOutcome>,
}

impl VerifyReport {
    /// The first signer that validated and chains to a trust anchor.
    pub fn trusted(&self) -> Option<&SignerOutcome> {
        self.signers.iter().find(|s| s.result.is_ok())
    }

    pub fn is_trusted(&self) -> bool {
        self.trusted().is_some()
    }

    /// One line per signer explaining the result.
    pub fn explain(&self) -> String {
        if self.signers.is_empty() {
            return "package is unsigned (the signature block has no signers)".into();
        }
        self.signers
            .iter()
            .map(|s| match &s.result {
                Ok(c) => format!("signer #{} ({}): valid, chain {}", s.index, s.summary.subject, c.subjects.join(" <- ")),
                Err(e) => format!("signer #{} ({}): {e}", s.index, s.summary.subject),
            })
            .collect::<Vec<_>>()
            .join("; ")
    }
}

impl SignatureBlock {
    /// Check every signer over `message` (header + command list) and its
    /// certificate path to one of `anchors`.
    pub fn verify(&self, message: &[u8], anchors: &[Certificate], opts: &VerifyOptions) -> VerifyReport {
        // One "now" for every signer of the block.
        let opts = VerifyOptions { now: Some(opts.now.unwrap_or_else(SystemTime::now)), ..opts.clone() };
        let signers = self
            .signers
            .iter()
            .enumerate()
            .map(|(index, s)| SignerOutcome { index, summary: self.summary(s), result: self.verify_one(s, message, anchors, &opts) })
            .collect();
        VerifyReport { signers }
    }

    fn verify_one(&self, s: &RawSigner, message: &[u8], anchors: &[Certificate], opts: &VerifyOptions) -> Result<ChainInfo, SignatureError> {
        let cert = s.check(self.signer_cert(&s.info.sid), message)?;
        validate_path(cert, self.raw_certificates(), anchors, opts)
    }
}
