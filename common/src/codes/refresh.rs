//! Keys a warm instance holds, with the time they were read: read again once older than
//! [`KEY_REFRESH`], so a rotation reaches every instance without recycling it. A failed read
//! keeps the keys held (a warning, never key material) and is tried again [`RETRY_AFTER`]
//! later; a request is never refused for it.

use std::fmt::Display;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};

use chrono::{DateTime, Duration, Utc};

use super::keys::KEY_REFRESH;

/// After a failed read, how long the keys held serve before the next try: an outage of
/// Secrets Manager costs one slow request in this long, not every request.
pub const RETRY_AFTER: Duration = Duration::seconds(30);

struct Held<T> {
    keys: Arc<T>,
    /// When to read again.
    stale_at: DateTime<Utc>,
}

pub struct Refreshing<T> {
    held: Mutex<Held<T>>,
}

impl<T> Refreshing<T> {
    /// Keys read at `fetched_at`.
    pub fn new(keys: T, fetched_at: DateTime<Utc>) -> Self {
        Self {
            held: Mutex::new(Held {
                keys: Arc::new(keys),
                stale_at: fetched_at + KEY_REFRESH,
            }),
        }
    }

    fn held(&self) -> std::sync::MutexGuard<'_, Held<T>> {
        self.held.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The keys to use at `now`: those held, or, once they are stale, what `read` gives (the
    /// lock is not held while it runs).
    pub async fn get<E, Fut>(&self, now: DateTime<Utc>, read: impl FnOnce() -> Fut) -> Arc<T>
    where
        E: Display,
        Fut: Future<Output = Result<T, E>>,
    {
        {
            let held = self.held();
            if now < held.stale_at {
                return Arc::clone(&held.keys);
            }
        }
        let fresh = read().await;
        let mut held = self.held();
        match fresh {
            Ok(keys) => {
                *held = Held {
                    keys: Arc::new(keys),
                    stale_at: now + KEY_REFRESH,
                };
            }
            Err(e) => {
                tracing::warn!(error = %e, "re-reading the code keys failed; keeping the keys held");
                held.stale_at = now + RETRY_AFTER;
            }
        }
        Arc::clone(&held.keys)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    fn t0() -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000, 0).unwrap()
    }

    #[tokio::test]
    async fn keys_are_read_again_once_older_than_the_refresh_interval() {
        let cache = Refreshing::new("old", t0());
        let reads = Cell::new(0);
        let read = |value: &'static str| {
            let reads = &reads;
            move || async move {
                reads.set(reads.get() + 1);
                Ok::<_, String>(value)
            }
        };
        let fresh = t0() + KEY_REFRESH - Duration::seconds(1);
        assert_eq!(*cache.get(fresh, read("new")).await, "old");
        assert_eq!(reads.get(), 0);
        let stale = t0() + KEY_REFRESH;
        assert_eq!(*cache.get(stale, read("new")).await, "new");
        assert_eq!(reads.get(), 1);
        // Held again for a whole interval from that read.
        let next = stale + KEY_REFRESH - Duration::seconds(1);
        assert_eq!(*cache.get(next, read("newer")).await, "new");
        assert_eq!(reads.get(), 1);
        assert_eq!(
            *cache.get(stale + KEY_REFRESH, read("newer")).await,
            "newer"
        );
        assert_eq!(reads.get(), 2);
    }

    #[tokio::test]
    async fn a_failed_read_keeps_the_keys_held_and_is_tried_again_later() {
        let cache = Refreshing::new("old", t0());
        let failed = t0() + KEY_REFRESH;
        let fail = || async { Err::<&str, _>("Secrets Manager is down") };
        assert_eq!(*cache.get(failed, fail).await, "old");
        // Not tried on every request meanwhile ...
        let unread = || async { panic!("read again before RETRY_AFTER") };
        let meanwhile = failed + RETRY_AFTER - Duration::seconds(1);
        assert_eq!(*cache.get::<String, _>(meanwhile, unread).await, "old");
        // ... but again after it.
        let retry = failed + RETRY_AFTER;
        assert_eq!(
            *cache.get(retry, || async { Ok::<_, String>("new") }).await,
            "new"
        );
    }
}
