//! [`panic_text`]: what a caught panic said.

use std::any::Any;

/// The message of a panic's payload (a `&str` or a `String`, as `panic!` makes them), or
/// `(no message)` for any other payload.
///
/// ```
/// let caught = std::panic::catch_unwind(|| panic!("worker {} died", 3)).unwrap_err();
/// assert_eq!(harvester_core::panic_text(&*caught), "worker 3 died");
/// ```
pub fn panic_text(payload: &(dyn Any + Send)) -> &str {
    payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(no message)")
}
