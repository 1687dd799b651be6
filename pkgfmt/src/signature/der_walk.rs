//! DER walking over raw bytes, so that what we verify is exactly what was
//! received (the `cms` crate re-sorts SET OF on decode).

use der::asn1::AnyRef;
use der::{Decode, Encode, Reader, SliceReader, Tag};

use super::error::SignatureError;

/// Length of the complete TLV at the start of `bytes` (a SEQUENCE).
pub fn tlv_len(bytes: &[u8]) -> Result<usize, SignatureError> {
    let mut r = SliceReader::new(bytes).map_err(malformed)?;
    let header = der::Header::decode(&mut r).map_err(malformed)?;
    if header.tag != Tag::Sequence {
        return Err(SignatureError::Malformed(format!("expected a SEQUENCE, found {}", header.tag)));
    }
    let total = (r.position() + header.length).map_err(malformed)?;
    let total = usize::try_from(total).map_err(malformed)?;
    if total > bytes.len() {
        return Err(SignatureError::Malformed(format!("block claims {total} bytes but only {} are present", bytes.len())));
    }
    Ok(total)
}

fn malformed(e: der::Error) -> SignatureError {
    SignatureError::Malformed(e.to_string())
}

/// The TLVs inside a constructed value, in order.
pub fn children(content: &[u8]) -> Result<Vec<AnyRef<'_>>, SignatureError> {
    let mut r = SliceReader::new(content).map_err(malformed)?;
    let mut out = Vec::new();
    while !r.is_finished() {
        out.push(AnyRef::decode(&mut r).map_err(malformed)?);
    }
    Ok(out)
}

/// Exactly one TLV filling `bytes`.
pub fn single(bytes: &[u8]) -> Result<AnyRef<'_>, SignatureError> {
    AnyRef::from_der(bytes).map_err(malformed)
}

/// Encode a TLV with DER length octets.
pub fn tlv(tag: Tag, content: &[u8]) -> Vec<u8> {
    AnyRef::new(tag, content).and_then(|a| a.to_der()).expect("content fits a DER length")
}

/// The full DER bytes of an element.
pub fn raw(any: &AnyRef<'_>) -> Vec<u8> {
    any.to_der().expect("re-encoding a decoded element")
}
