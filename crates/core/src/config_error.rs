//! [`ConfigError`]: a setting that cannot work, named by its field.

use std::borrow::Cow;

use thiserror::Error;

/// A configuration value cannot work; `field` names it (a dotted path such as
/// `breaker.failure_rate_threshold` or `hpa.behavior.scale_up.policies[1].period`) and
/// `reason` says what is wrong and what is allowed.
///
/// Every crate of the workspace checks its settings up front and refuses a bad one with
/// this one type.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("invalid config {field}: {reason}")]
pub struct ConfigError {
    /// Dotted path of the field.
    pub field: Cow<'static, str>,
    /// What is wrong and what is allowed.
    pub reason: String,
}

impl ConfigError {
    /// An error for `field`.
    pub fn new(field: impl Into<Cow<'static, str>>, reason: impl Into<String>) -> Self {
        ConfigError { field: field.into(), reason: reason.into() }
    }

    /// The same error one level down: `prefix.field` (a section's check, reported from
    /// the config that holds the section).
    pub fn within(mut self, prefix: &str) -> Self {
        self.field = Cow::Owned(format!("{prefix}.{}", self.field));
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_field_is_named_and_compares_with_a_str() {
        let err = ConfigError::new("pool.size", "must be at least 1");
        assert_eq!(err.field, "pool.size");
        assert_eq!(err.to_string(), "invalid config pool.size: must be at least 1");
        let nested = ConfigError::new(format!("rules[{}]", 2), "empty").within("policy");
        assert_eq!(nested.field, "policy.rules[2]");
    }
}
