//! `cpekit package sign`: add a signature. E.5: "additional signatures can
//! be added to an existing signed package file without modifying any part
//! of the file other than the signature block itself."

use std::io::{self, Write};

use anyhow::Result;

use super::{atomic_write, load_signers, open_prefix, sign_all};
use crate::cli::SignArgs;

pub fn run(a: SignArgs) -> Result<u8> {
    let signers = load_signers(&a.signer)?;
    let (prefix, mut payload, _) = open_prefix(&a.package)?;
    let block = sign_all(prefix.signatures.clone(), prefix.signed_message(), &signers)?;
    let out = a.output.unwrap_or_else(|| a.package.clone());
    let declared = prefix.header.payload_length as u64;
    atomic_write(&out, |f| {
        let mut w = io::BufWriter::with_capacity(pkgfmt::payload::STREAM_CHUNK, f);
        // Header and command list exactly as read, never re-encoded.
        w.write_all(prefix.signed_message())?;
        w.write_all(&block.to_der())?;
        let copied = io::copy(&mut payload, &mut w)?;
        // Refuse to sign a truncated or padded package; the output is
        // discarded and the input left untouched.
        if copied < declared {
            return Err(pkgfmt::Error::PayloadTruncated { expected: declared, actual: copied }.into());
        }
        if copied > declared {
            return Err(pkgfmt::Error::PayloadTooLong { expected: declared }.into());
        }
        w.flush()?;
        Ok(())
    })?;
    eprintln!("signed {}: {} signer(s) now", out.display(), block.signers().len());
    Ok(crate::exit::SUCCESS)
}
