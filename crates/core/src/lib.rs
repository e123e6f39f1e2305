//! # harvester-core
//!
//! The small pieces every harvester crate shares, each in one place so that the crates
//! agree on them: a refused setting is one [`ConfigError`] type wherever it is checked; a
//! target host is named one way ([`host`]: lower-case, IPv6 without brackets, no port);
//! a `Retry-After` header reads one way ([`retry_after`]); a caught panic says what it
//! said one way ([`panic_text`]); credentials in URLs decode one, strict way
//! ([`percent`]); and the time is read one way ([`time::now`]: tokio's clock, or the CPU's
//! time-stamp counter once a program asks for it).
//!
//! It depends on nothing of ours and is a leaf of every other crate.
//!
//! ```
//! use harvester_core::{ConfigError, host};
//!
//! assert_eq!(host::normalize("[2001:DB8::1]:8080"), "2001:db8::1");
//! let err = ConfigError::new("retry.max_attempts", "must be at least 1");
//! assert_eq!(err.to_string(), "invalid config retry.max_attempts: must be at least 1");
//! ```

#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod config_error;
pub mod host;
mod panic;
pub mod percent;
pub mod retry_after;
pub mod time;

pub use config_error::ConfigError;
pub use panic::panic_text;
