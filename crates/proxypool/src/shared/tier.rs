//! Quality tiers: the registry's coarse index over the quality score.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A band of the quality score (see [`Candidates::quality`](crate::balance::Candidates::quality)),
/// indexed in the registry so that instances can ask for "high or better" without
/// reading every entry. A proxy's tier is the one its registering instance saw at its
/// last heartbeat.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum QualityTier {
    /// Score below 0.5.
    Low,
    /// Score from 0.5.
    Medium,
    /// Score from 0.7 (the seed's default minimum quality).
    High,
    /// Score from 0.9.
    Premium,
}

impl QualityTier {
    /// Every tier, best first.
    pub const ALL: [QualityTier; 4] = [QualityTier::Premium, QualityTier::High, QualityTier::Medium, QualityTier::Low];

    /// The tier of a quality score; scores outside [0, 1] (or NaN) are clamped.
    pub fn of(quality: f64) -> QualityTier {
        let quality = if quality.is_nan() { 0.0 } else { quality };
        QualityTier::ALL.into_iter().find(|tier| quality >= tier.min_score()).unwrap_or(QualityTier::Low)
    }

    /// The lowest score in this tier.
    pub fn min_score(self) -> f64 {
        match self {
            QualityTier::Premium => 0.9,
            QualityTier::High => 0.7,
            QualityTier::Medium => 0.5,
            QualityTier::Low => 0.0,
        }
    }

    /// The lower-case name used in keys and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            QualityTier::Premium => "premium",
            QualityTier::High => "high",
            QualityTier::Medium => "medium",
            QualityTier::Low => "low",
        }
    }
}

impl fmt::Display for QualityTier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scores_fall_in_the_seed_bands() {
        assert_eq!(QualityTier::of(1.0), QualityTier::Premium);
        assert_eq!(QualityTier::of(0.9), QualityTier::Premium);
        assert_eq!(QualityTier::of(0.75), QualityTier::High);
        assert_eq!(QualityTier::of(0.5), QualityTier::Medium);
        assert_eq!(QualityTier::of(0.1), QualityTier::Low);
        assert_eq!(QualityTier::of(f64::NAN), QualityTier::Low);
        assert_eq!(QualityTier::of(-3.0), QualityTier::Low);
    }

    proptest::proptest! {
        #[test]
        fn a_better_score_never_has_a_worse_tier(a in 0.0f64..=1.0, b in 0.0f64..=1.0) {
            let (low, high) = if a <= b { (a, b) } else { (b, a) };
            proptest::prop_assert!(QualityTier::of(low) <= QualityTier::of(high));
            proptest::prop_assert!(QualityTier::of(low).min_score() <= low);
        }
    }
}
