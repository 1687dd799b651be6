//! The data encoding of type-47 (0x2F) FILE records, 2wire-pkgstream-notes
//! §11, a reading of the decompiled `lib2sp_open_file` / `lib2sp_write_file`
//! `[DECOMP]`: the record's data is "a sequence of chunks: a 4-byte
//! big-endian length (must be ≤ 0x8000, otherwise an error), then that many
//! bytes, which are written. After each chunk the file position is rounded
//! up to the next 32 KiB boundary with a seek" — each 32 KiB block of the
//! file stored as a length-prefixed prefix, the rest of the block a hole.
//! The source repository only labels the type and does not describe this.
//!
//! Where the reading leaves a choice, this decoder does what the described
//! calls do: rounding an aligned position up leaves it where it is (a
//! zero-length chunk writes nothing and does not advance), and a seek past
//! the end does not extend a file, so the file ends where the last data
//! written ends.
//!
//! Sans-IO: feed the encoded bytes in any chunking; each run of data comes
//! out with its offset in the decoded file.

/// The block size, and the longest chunk (0x8000).
pub const BLOCK: u64 = 0x8000;

/// Why encoded data is not a valid chunk sequence.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SparseError {
    #[error("type-47 chunk at encoded offset {at} has length {length}, more than 32768 (notes §11)")]
    ChunkTooLong { at: u64, length: u32 },
    #[error("type-47 data ends inside a chunk {what} (encoded offset {at})")]
    Truncated { what: &'static str, at: u64 },
}

#[derive(Debug, Clone, Copy)]
enum State {
    /// Reading a length prefix; `n` of its 4 octets so far.
    Length { have: [u8; 4], n: usize },
    /// Inside a chunk's data.
    Data { remaining: u32 },
}

/// Decodes one record's data.
#[derive(Debug, Clone)]
pub struct SparseDecoder {
    state: State,
    /// Where the next data byte is written in the decoded file.
    position: u64,
    /// Encoded octets consumed.
    consumed: u64,
    /// End of the last data written: the decoded file's size.
    size: u64,
}

impl Default for SparseDecoder {
    fn default() -> Self {
        SparseDecoder { state: State::Length { have: [0; 4], n: 0 }, position: 0, consumed: 0, size: 0 }
    }
}

impl SparseDecoder {
    pub fn new() -> SparseDecoder {
        SparseDecoder::default()
    }

    /// Decode the next encoded octets; `write(offset, bytes)` receives each
    /// run of data at its offset in the decoded file, in increasing order.
    pub fn feed<E: From<SparseError>>(&mut self, mut input: &[u8], mut write: impl FnMut(u64, &[u8]) -> Result<(), E>) -> Result<(), E> {
        while !input.is_empty() {
            match &mut self.state {
                State::Length { have, n } => {
                    let k = (4 - *n).min(input.len());
                    have[*n..*n + k].copy_from_slice(&input[..k]);
                    *n += k;
                    input = &input[k..];
                    self.consumed += k as u64;
                    if *n == 4 {
                        let length = u32::from_be_bytes(*have);
                        if length as u64 > BLOCK {
                            return Err(SparseError::ChunkTooLong { at: self.consumed - 4, length }.into());
                        }
                        self.state = State::Data { remaining: length };
                        if length == 0 {
                            self.end_chunk();
                        }
                    }
                }
                State::Data { remaining } => {
                    let k = (*remaining as usize).min(input.len());
                    let (now, rest) = input.split_at(k);
                    *remaining -= k as u32;
                    let done = *remaining == 0;
                    write(self.position, now)?;
                    self.position += k as u64;
                    self.size = self.position;
                    self.consumed += k as u64;
                    input = rest;
                    if done {
                        self.end_chunk();
                    }
                }
            }
        }
        Ok(())
    }

    /// After a chunk: round the position up to the next block boundary.
    fn end_chunk(&mut self) {
        self.position = self.position.div_ceil(BLOCK) * BLOCK;
        self.state = State::Length { have: [0; 4], n: 0 };
    }

    /// The encoded data ended: it must end between chunks. Returns the
    /// decoded file's size.
    pub fn finish(&self) -> Result<u64, SparseError> {
        match self.state {
            State::Length { n: 0, .. } => Ok(self.size),
            State::Length { .. } => Err(SparseError::Truncated { what: "length prefix", at: self.consumed }),
            State::Data { .. } => Err(SparseError::Truncated { what: "data", at: self.consumed }),
        }
    }

    /// Encode `file` as a writer of type-47 data would: each 32 KiB block
    /// stored up to its last non-zero octet (at least one octet, since a
    /// zero-length chunk does not advance), trailing zero blocks dropped
    /// only if the file ends there. For tests and samples.
    pub fn encode(file: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let blocks: Vec<&[u8]> = file.chunks(BLOCK as usize).collect();
        for (i, block) in blocks.iter().enumerate() {
            let last = i + 1 == blocks.len();
            let keep = if last { block.len() } else { block.iter().rposition(|b| *b != 0).map_or(1, |p| p + 1) };
            out.extend((keep as u32).to_be_bytes());
            out.extend(&block[..keep]);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Decode into a buffer, holes as zeros.
    fn decode(encoded: &[u8], chunk: usize) -> Result<Vec<u8>, SparseError> {
        let mut d = SparseDecoder::new();
        let mut file = Vec::new();
        for c in encoded.chunks(chunk.max(1)) {
            d.feed::<SparseError>(c, |at, bytes| {
                assert!(at as usize >= file.len(), "increasing offsets");
                file.resize(at as usize, 0);
                file.extend_from_slice(bytes);
                Ok(())
            })?;
        }
        let size = d.finish()?;
        assert_eq!(size as usize, file.len());
        Ok(file)
    }

    #[test]
    fn blocks_with_holes_round_trip_in_any_chunking() {
        let mut file = vec![0u8; 3 * BLOCK as usize + 100];
        file[0..10].copy_from_slice(b"0123456789"); // block 0: 10 octets, then a hole
        file[BLOCK as usize..2 * BLOCK as usize].fill(0xAB); // block 1: full
                                                             // block 2: all zero (stored as one octet); block 3: 100 octets
        file[3 * BLOCK as usize + 99] = 1;
        let encoded = SparseDecoder::encode(&file);
        assert_eq!(encoded.len(), 4 + 10 + 4 + BLOCK as usize + 4 + 1 + 4 + 100);
        assert_eq!(&encoded[..4], &10u32.to_be_bytes());
        for chunk in [1, 3, 4, 5, 4096, encoded.len()] {
            assert_eq!(decode(&encoded, chunk).unwrap(), file, "chunk {chunk}");
        }
    }

    #[test]
    fn the_file_ends_where_the_last_data_ends() {
        // One chunk of 5 octets: the position rounds up to 32 KiB, but a
        // seek does not extend the file.
        let mut e = 5u32.to_be_bytes().to_vec();
        e.extend(b"hello");
        assert_eq!(decode(&e, 2).unwrap(), b"hello");
        // A zero-length chunk writes nothing and does not advance.
        let mut e = 0u32.to_be_bytes().to_vec();
        e.extend(3u32.to_be_bytes());
        e.extend(b"abc");
        assert_eq!(decode(&e, 1).unwrap(), b"abc");
        assert_eq!(decode(&[], 1).unwrap(), b"");
    }

    #[test]
    fn bad_chunks_are_errors() {
        let e = (BLOCK as u32 + 1).to_be_bytes();
        assert_eq!(decode(&e, 4).unwrap_err(), SparseError::ChunkTooLong { at: 0, length: 0x8001 });
        let mut e = 1u32.to_be_bytes().to_vec();
        e.extend(b"x");
        e.extend([0, 0]);
        assert_eq!(decode(&e, 7).unwrap_err(), SparseError::Truncated { what: "length prefix", at: 7 });
        let mut e = 4u32.to_be_bytes().to_vec();
        e.extend(b"ab");
        assert_eq!(decode(&e, 7).unwrap_err(), SparseError::Truncated { what: "data", at: 6 });
    }
}
