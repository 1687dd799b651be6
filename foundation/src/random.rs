//! The one source of randomness: the operating system's generator
//! (`getrandom(2)` through the `getrandom` crate).
//!
//! **Failure policy.** Every function returns a [`RandomError`] when the
//! operating system cannot provide random bytes; nothing here panics, falls
//! back to the clock, or returns zeros. The caller decides what a failure
//! means for it: a secret (a nonce, a password, a URL path) must not be
//! made without randomness, so those callers fail the operation; a caller
//! whose randomness only spreads load (back-off jitter) may carry on
//! without it and say so in its log.
//!
//! Integers in a range are drawn without modulo bias (rejection sampling).

use std::ops::RangeInclusive;

/// The operating system's random number generator failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the operating system's random number generator failed: {0}")]
pub struct RandomError(#[source] pub getrandom::Error);

/// Fill `buf` with random bytes.
pub fn fill(buf: &mut [u8]) -> Result<(), RandomError> {
    getrandom::getrandom(buf).map_err(RandomError)
}

/// `N` random bytes.
pub fn bytes<const N: usize>() -> Result<[u8; N], RandomError> {
    let mut b = [0u8; N];
    fill(&mut b)?;
    Ok(b)
}

/// `len` random bytes as lower-case hex (`2 * len` characters): secrets,
/// nonces, unguessable paths.
pub fn hex_secret(len: usize) -> Result<String, RandomError> {
    let mut b = vec![0u8; len];
    fill(&mut b)?;
    Ok(hex::encode(b))
}

/// A random `u64`.
pub fn u64() -> Result<u64, RandomError> {
    bytes::<8>().map(u64::from_le_bytes)
}

/// A uniform integer in `range` (both ends included).
pub fn uniform(range: RangeInclusive<u64>) -> Result<u64, RandomError> {
    let (lo, hi) = (*range.start(), *range.end());
    if lo >= hi {
        return Ok(lo);
    }
    match (hi - lo).checked_add(1) {
        Some(n) => Ok(lo + below_with(n, u64)?),
        // The whole u64 range: every value is equally likely.
        None => u64(),
    }
}

/// A uniform float in `[0, 1)` (53 random bits, every value equally
/// spaced).
pub fn unit() -> Result<f64, RandomError> {
    Ok((u64()? >> 11) as f64 / (1u64 << 53) as f64)
}

/// A uniform integer in `0..n` (`n > 0`) from uniform `u64`s: draws in the
/// last, incomplete copy of `0..n` within the `u64` range are rejected, so
/// that no value is more likely than another (`r % n` alone favours the
/// values below `2^64 mod n`).
fn below_with<E>(n: u64, mut next: impl FnMut() -> Result<u64, E>) -> Result<u64, E> {
    debug_assert!(n > 0);
    // 2^64 mod n: the number of values at the bottom to reject.
    let reject = n.wrapping_neg() % n;
    loop {
        let r = next()?;
        if r >= reject {
            return Ok(r % n);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_secrets() {
        let a = hex_secret(16).unwrap();
        let b = hex_secret(16).unwrap();
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
        assert_ne!(a, b);
        assert_ne!(a, "0".repeat(32));
        assert_eq!(hex_secret(0).unwrap(), "");
    }

    #[test]
    fn rejection_removes_the_modulo_bias() {
        // n = 3: 2^64 mod 3 = 1, so the single value 0 is rejected (with
        // it, 0 % 3 = 0 would make 0 one draw more likely than 1 and 2).
        let mut draws = [0u64, 0, 4].into_iter();
        assert_eq!(below_with(3, || Ok::<_, ()>(draws.next().unwrap())), Ok(1), "0 rejected twice, then 4 % 3");
        // A power of two has no incomplete copy: nothing rejected.
        assert_eq!(below_with(8, || Ok::<_, ()>(0)), Ok(0));
        // n = 2^63 + 1: values below 2^63 - 1 are rejected.
        let n = (1u64 << 63) + 1;
        let mut draws = [5u64, (1 << 63) - 2, u64::MAX].into_iter();
        assert_eq!(below_with(n, || Ok::<_, ()>(draws.next().unwrap())), Ok(u64::MAX % n));
        // Errors pass through.
        assert_eq!(below_with(3, || Err::<u64, _>("no entropy")), Err("no entropy"));
    }

    #[test]
    fn uniform_covers_its_range_evenly() {
        const N: usize = 60_000;
        let mut counts = [0usize; 6];
        for _ in 0..N {
            let v = uniform(10..=15).unwrap();
            counts[(v - 10) as usize] += 1;
        }
        // Expected 10,000 each, standard deviation ~91: 9,000..11,000 is
        // more than 10 deviations wide.
        for (i, c) in counts.iter().enumerate() {
            assert!((9_000..=11_000).contains(c), "value {}: {c} of {N} ({counts:?})", i + 10);
        }
        assert_eq!(uniform(7..=7).unwrap(), 7);
        assert!(uniform(0..=u64::MAX).is_ok());
    }

    #[test]
    fn unit_is_in_range_and_spread() {
        let mut halves = [0usize; 2];
        for _ in 0..10_000 {
            let u = unit().unwrap();
            assert!((0.0..1.0).contains(&u), "{u}");
            halves[(u >= 0.5) as usize] += 1;
        }
        assert!(halves.iter().all(|h| (4_500..=5_500).contains(h)), "{halves:?}");
    }
}
