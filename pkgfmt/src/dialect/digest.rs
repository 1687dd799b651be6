//! The per-record digest of FILE and SCRIPT records (2wire-pkgstream-notes
//! §6.1, §9): "hash algorithm: 1 = SHA-1 (20 bytes), 2 = MD5 (16), 3 =
//! SHA-256 (32)". The 10.5.3 gateway code has branches for 1 and 2 only;
//! 3 is the source repository's reading of the 11.5.1 code `[DOC]`.

use sha1::Digest as _;

use crate::codec::ValueError;
use crate::error::ParseErrorKind;

/// A hash algorithm code of the dialect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DigestAlgorithm {
    Sha1,
    Md5,
    Sha256,
}

impl DigestAlgorithm {
    pub fn from_code(code: u32) -> Option<DigestAlgorithm> {
        match code {
            1 => Some(DigestAlgorithm::Sha1),
            2 => Some(DigestAlgorithm::Md5),
            3 => Some(DigestAlgorithm::Sha256),
            _ => None,
        }
    }

    pub fn code(self) -> u32 {
        match self {
            DigestAlgorithm::Sha1 => 1,
            DigestAlgorithm::Md5 => 2,
            DigestAlgorithm::Sha256 => 3,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            DigestAlgorithm::Sha1 => "SHA-1",
            DigestAlgorithm::Md5 => "MD5",
            DigestAlgorithm::Sha256 => "SHA-256",
        }
    }

    /// Digest length in octets.
    pub fn digest_len(self) -> u32 {
        match self {
            DigestAlgorithm::Sha1 => 20,
            DigestAlgorithm::Md5 => 16,
            DigestAlgorithm::Sha256 => 32,
        }
    }

    /// A hasher of this algorithm.
    pub fn hasher(self) -> Hasher {
        match self {
            DigestAlgorithm::Sha1 => Hasher::Sha1(sha1::Sha1::new()),
            DigestAlgorithm::Md5 => Hasher::Md5(md5::Md5::new()),
            DigestAlgorithm::Sha256 => Hasher::Sha256(sha2::Sha256::new()),
        }
    }

    /// Check a record's algorithm code (at `at`) and digest length (at
    /// `at + 8`, where both layouts keep it after the digest offset).
    pub(crate) fn check(code: u32, length: u32, at: usize) -> Result<DigestAlgorithm, ValueError> {
        let a = DigestAlgorithm::from_code(code).ok_or((at, ParseErrorKind::UnknownDigestAlgorithm(code)))?;
        if length != a.digest_len() {
            return Err((at + 8, ParseErrorKind::DigestLength { algorithm: a.name(), expected: a.digest_len(), found: length }));
        }
        Ok(a)
    }
}

/// A digest as a record carries it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Digest {
    pub algorithm: DigestAlgorithm,
    pub value: Vec<u8>,
}

impl Digest {
    /// `sha1 0123…`.
    pub fn to_hex(&self) -> String {
        hex::encode(&self.value)
    }
}

/// A running hash of one of the dialect's algorithms.
#[derive(Clone)]
pub enum Hasher {
    Sha1(sha1::Sha1),
    Md5(md5::Md5),
    Sha256(sha2::Sha256),
}

impl Hasher {
    pub fn update(&mut self, bytes: &[u8]) {
        match self {
            Hasher::Sha1(h) => h.update(bytes),
            Hasher::Md5(h) => h.update(bytes),
            Hasher::Sha256(h) => h.update(bytes),
        }
    }

    /// Hash `n` zero octets (a hole of a sparse file).
    pub fn update_zeros(&mut self, mut n: u64) {
        const ZEROS: [u8; 4096] = [0; 4096];
        while n > 0 {
            let k = n.min(ZEROS.len() as u64) as usize;
            self.update(&ZEROS[..k]);
            n -= k as u64;
        }
    }

    pub fn finalize(self) -> Vec<u8> {
        match self {
            Hasher::Sha1(h) => h.finalize().to_vec(),
            Hasher::Md5(h) => h.finalize().to_vec(),
            Hasher::Sha256(h) => h.finalize().to_vec(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn three_algorithms_with_their_lengths() {
        for (code, name, len, abc) in [
            (1, "SHA-1", 20, "a9993e364706816aba3e25717850c26c9cd0d89d"),
            (2, "MD5", 16, "900150983cd24fb0d6963f7d28e17f72"),
            (3, "SHA-256", 32, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
        ] {
            let a = DigestAlgorithm::from_code(code).unwrap();
            assert_eq!((a.code(), a.name(), a.digest_len()), (code, name, len));
            let mut h = a.hasher();
            h.update(b"abc");
            assert_eq!(hex::encode(h.finalize()), abc);
            assert_eq!(DigestAlgorithm::check(code, len, 12), Ok(a));
            assert_eq!(DigestAlgorithm::check(code, len + 1, 12).unwrap_err().0, 20);
        }
        assert_eq!(DigestAlgorithm::check(4, 20, 12), Err((12, ParseErrorKind::UnknownDigestAlgorithm(4))));
        let mut z = DigestAlgorithm::Sha1.hasher();
        z.update_zeros(10_000);
        let mut w = DigestAlgorithm::Sha1.hasher();
        w.update(&[0; 10_000]);
        assert_eq!(z.finalize(), w.finalize());
    }
}
