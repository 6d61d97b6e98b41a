//! The pure domain: no AWS, no Lambda types, no clock (`now` is always a parameter).

pub mod access_log;
pub mod age;
pub mod binding;
pub mod china_time;
pub mod code;
pub mod colour;
pub mod dispute;
pub mod erasure;
pub mod health;
pub mod name;
pub mod nucleic;
pub mod pledge;
pub mod policy;
pub mod relationship;
pub mod resident_id;
pub mod wire;

/// How many write shards each expiry day of the `by_expiry` index is split into. Everything
/// written at one moment expires at about the same time, so an unsharded bucket is one index
/// partition key taking all of the system's expiring writes, and a partition takes about
/// 1,000 writes a second. 128 shards carry the planned peak with room (`docs/capacity.md`,
/// "Hot keys"); the cleanup reads each of them about once an hour.
pub const EXPIRY_SHARDS: u32 = 128;

/// Items that expire carry their expiry as epoch seconds (the table's TTL attribute) and a
/// bucket: their expiry day (UTC) and a write shard, `2026-11-28#017`. The index's sort key,
/// `due_at`, gives the cleanup its precision within the day; the day keeps the number of
/// buckets it reads small (one query per shard per day, not per hour).
pub fn expiry_bucket(expires_at: chrono::DateTime<chrono::Utc>, shard: u32) -> String {
    debug_assert!(shard < EXPIRY_SHARDS);
    format!("{}#{shard:03}", expires_at.format("%Y-%m-%d"))
}

/// Every bucket of one expiry day: its shards, then the unsharded hour buckets
/// (`2026-11-28T10`) that items written before the index was sharded carry. Those are read
/// until the longest retention (audit records, a year) has passed since the change.
pub fn expiry_buckets_of_day(day: chrono::NaiveDate) -> Vec<String> {
    let start = day.and_time(chrono::NaiveTime::MIN).and_utc();
    let shards = (0..EXPIRY_SHARDS).map(|shard| expiry_bucket(start, shard));
    let unsharded_hours = (0..24).map(|hour| {
        (start + chrono::Duration::hours(hour))
            .format("%Y-%m-%dT%H")
            .to_string()
    });
    shards.chain(unsharded_hours).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{NaiveDate, TimeZone, Utc};

    #[test]
    fn an_expiry_bucket_is_the_utc_day_and_a_padded_shard() {
        let last_second = Utc.with_ymd_and_hms(2028, 2, 29, 23, 59, 59).unwrap();
        assert_eq!(expiry_bucket(last_second, 7), "2028-02-29#007");
        assert_eq!(
            expiry_bucket(last_second + chrono::Duration::seconds(1), 127),
            "2028-03-01#127"
        );
    }

    #[test]
    fn a_day_has_every_shard_and_the_unsharded_hours_once() {
        let buckets = expiry_buckets_of_day(NaiveDate::from_ymd_opt(2026, 11, 28).unwrap());
        let distinct: std::collections::BTreeSet<_> = buckets.iter().collect();
        assert_eq!(buckets.len(), EXPIRY_SHARDS as usize + 24);
        assert_eq!(distinct.len(), buckets.len());
        for expected in [
            "2026-11-28#000",
            "2026-11-28#127",
            "2026-11-28T00",
            "2026-11-28T23",
        ] {
            assert!(distinct.contains(&expected.to_owned()), "{expected}");
        }
    }
}
