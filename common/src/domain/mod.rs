//! The pure domain: no AWS, no Lambda types, no clock (`now` is always a parameter).

pub mod age;
pub mod binding;
pub mod code;
pub mod health;
pub mod name;
pub mod pledge;
pub mod policy;
pub mod relationship;
pub mod resident_id;
pub mod testing;

/// Items that expire carry their expiry as epoch seconds (the table's TTL attribute) and an
/// hour bucket, so the cleanup reads one index partition per hour instead of scanning.
pub fn expiry_bucket(expires_at: chrono::DateTime<chrono::Utc>) -> String {
    expires_at.format("%Y-%m-%dT%H").to_string()
}
