//! When a person no guardian holds any more is erased (PIPL art. 47).

use chrono::Duration;

/// How long after the last binding of a person ends their data is kept: long enough for a
/// guardian to bind them again without losing their results, or to dispute how the binding
/// ended (a dispute upheld, an unbind the family contests), short enough that a person nobody
/// holds is not kept.
pub const ERASURE_WINDOW_DAYS: i64 = 30;

pub fn erasure_window() -> Duration {
    Duration::days(ERASURE_WINDOW_DAYS)
}
