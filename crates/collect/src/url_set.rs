//! The URLs of a list as a compact set: a 64-bit fingerprint per URL, never the URL itself,
//! and one mark per URL (handed out, or already done in the `--out` of a resumed run).
//!
//! A list of a million URLs holds 8 MB of fingerprints and 125 kB of marks, where the
//! strings would take a hundred bytes or more each.
//!
//! ```
//! use harvester_collect::url_set::{Marked, UrlSetBuilder};
//!
//! let mut builder = UrlSetBuilder::new();
//! for url in ["http://a.test/1", "http://a.test/2", "http://a.test/1"] {
//!     builder.add(url);
//! }
//! let (mut set, repeats) = builder.build();
//! assert_eq!((set.len(), repeats), (2, 1));
//! assert_eq!(set.mark("http://a.test/1"), Marked::First);
//! assert_eq!(set.mark("http://a.test/1"), Marked::Again);
//! assert_eq!(set.mark("http://a.test/3"), Marked::Unlisted);
//! ```
//!
//! ## Why 64 bits, and what a collision costs
//!
//! Two different URLs of one list share a fingerprint with a probability of about
//! n² / 2⁶⁵: one in 37 million runs of a million URLs, one in 370 000 of ten million. When it
//! happens, the second URL is taken for a repeat of the first: it is left out of the run
//! (counted with the repeated lines) and has no line in `--out` (under `--resume`, it is
//! taken for done when the first one's line is there). The key is drawn at random for every
//! process, so the same two URLs almost surely do not collide again: a later `--resume`
//! fetches the one left out. 128 bits would make that practically impossible at twice the memory (16 bytes
//! per URL); 64 keeps a list of tens of millions in a few hundred MB, and an adversary who
//! writes the list cannot aim at a collision without the key.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;

/// Collects the fingerprints of a list's URLs, repeats included; [`UrlSetBuilder::build`]
/// makes the set.
#[derive(Debug, Clone, Default)]
pub struct UrlSetBuilder {
    key: RandomState,
    fingerprints: Vec<u64>,
}

impl UrlSetBuilder {
    /// An empty set under a fresh random key.
    pub fn new() -> Self {
        UrlSetBuilder::default()
    }

    /// Adds `url` (a repeat is counted by [`UrlSetBuilder::build`]).
    pub fn add(&mut self, url: &str) {
        self.fingerprints.push(self.key.hash_one(url));
    }

    /// The set, and how many of the URLs added were repeats.
    pub fn build(self) -> (UrlSet, u64) {
        let UrlSetBuilder { key, mut fingerprints } = self;
        let added = fingerprints.len();
        fingerprints.sort_unstable();
        fingerprints.dedup();
        fingerprints.shrink_to_fit();
        let repeats = (added - fingerprints.len()) as u64;
        let marks = vec![0; fingerprints.len().div_ceil(64)];
        (UrlSet { key, fingerprints, marks, marked: 0 }, repeats)
    }
}

/// The URLs of a list, each with a mark (see the module's documentation).
#[derive(Debug, Clone)]
pub struct UrlSet {
    key: RandomState,
    /// Sorted, each once.
    fingerprints: Vec<u64>,
    /// One bit per fingerprint, in the same order.
    marks: Vec<u64>,
    marked: u64,
}

/// What [`UrlSet::mark`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Marked {
    /// A URL of the list, marked now for the first time.
    First,
    /// A URL of the list, already marked.
    Again,
    /// Not a URL of the list.
    Unlisted,
}

impl UrlSet {
    /// URLs in the set.
    pub fn len(&self) -> u64 {
        self.fingerprints.len() as u64
    }

    /// Whether the set has no URL.
    pub fn is_empty(&self) -> bool {
        self.fingerprints.is_empty()
    }

    /// URLs marked so far.
    pub fn marked(&self) -> u64 {
        self.marked
    }

    /// Marks `url`, saying whether it was marked already or is not in the set.
    pub fn mark(&mut self, url: &str) -> Marked {
        let Ok(at) = self.fingerprints.binary_search(&self.key.hash_one(url)) else { return Marked::Unlisted };
        let (word, bit) = (at / 64, 1u64 << (at % 64));
        if self.marks[word] & bit != 0 {
            return Marked::Again;
        }
        self.marks[word] |= bit;
        self.marked += 1;
        Marked::First
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Whatever the URLs: the set holds each once, the repeats are the rest, and each
        /// URL is marked first once, then again; others are unlisted.
        #[test]
        fn each_url_is_marked_first_once_and_others_are_unlisted(
            urls in prop::collection::vec("[a-c]{1,3}", 0..60),
            others in prop::collection::vec("[d-f]{1,3}", 0..10),
        ) {
            let mut builder = UrlSetBuilder::new();
            urls.iter().for_each(|url| builder.add(url));
            let (mut set, repeats) = builder.build();
            let distinct: std::collections::HashSet<&String> = urls.iter().collect();
            prop_assert_eq!(set.len(), distinct.len() as u64);
            prop_assert_eq!(repeats, (urls.len() - distinct.len()) as u64);
            let mut firsts = 0;
            for url in &urls {
                match set.mark(url) {
                    Marked::First => firsts += 1,
                    Marked::Again => {}
                    Marked::Unlisted => prop_assert!(false, "{url} is listed"),
                }
            }
            prop_assert_eq!(firsts, distinct.len());
            prop_assert_eq!(set.marked(), distinct.len() as u64);
            for other in &others {
                prop_assert_eq!(set.mark(other), Marked::Unlisted);
            }
        }
    }
}
