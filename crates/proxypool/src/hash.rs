//! Stable hashes: the same in every process and every run, so that derived proxy ids and
//! sticky sessions survive restarts (std's and foldhash's hashers are seeded per process).

/// FNV-1a over `bytes`: stable, and cheap for the short strings it is given (ids, user
/// names, session keys).
#[inline]
pub(crate) fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

/// A 64-bit mixer (SplitMix64's finaliser): spreads rendezvous scores uniformly.
#[inline]
pub(crate) fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A stable, well-mixed 64-bit hash of a string (FNV-1a, then mixed): proxy ids in the
/// snapshot, sticky session keys.
#[inline]
pub(crate) fn hash_str(s: &str) -> u64 {
    mix64(fnv1a64(s.as_bytes()))
}
