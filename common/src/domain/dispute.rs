//! Disputes: a guardian reports a co-guardian's binding of the same relative as not legitimate
//! (the announcement: "恶意绑定他人等将依法承担法律责任"); the health authority upholds or
//! dismisses it. The rules here are pure: the id, the reasons, the free text, the limits.

use chrono::{DateTime, Duration, SubsecRound, Utc};

use super::wire::wire_enum;

/// Reports a guardian may open per China day, across all their relatives: enough for a
/// family that finds a stranger on two relatives, too few to flood the authority's queue.
pub const DISPUTES_PER_DAY: u32 = 3;

/// The free text of a report, in characters (not bytes: it is mostly Chinese).
pub const MAX_DISPUTE_DETAILS_CHARS: usize = 200;

/// How long a guardian whose binding was found not legitimate may not bind that person
/// again: half a year, long past the epidemic-control situation the binding was abused in,
/// and long enough for the authority's legal follow-up to reach the guardian.
pub fn dispute_ban() -> Duration {
    Duration::days(180)
}

/// When the ban of a dispute upheld at `upheld_at` ends: `dispute_ban()` later, on the whole
/// second (a ban is kept, and compared by the bind transaction, in epoch seconds).
pub fn ban_ends(upheld_at: DateTime<Utc>) -> DateTime<Utc> {
    (upheld_at + dispute_ban()).trunc_subsecs(0)
}

/// A dispute's id: a version-7 UUID, so ids sort by when they were opened (the queue is read
/// oldest first by its sort key alone). Nothing about the people in it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DisputeId(String);

impl DisputeId {
    /// A new id for a report opened at `now`.
    pub fn opened_at(now: DateTime<Utc>) -> Self {
        // A v4 UUID's random bytes, without its version and variant bits.
        let bytes = uuid::Uuid::new_v4().into_bytes();
        let mut random = [0u8; 10];
        random[..6].copy_from_slice(&bytes[..6]);
        random[6..].copy_from_slice(&bytes[12..]);
        Self::new(now, random)
    }

    /// The id of a report opened at `now`, `random` filling the bits after the time.
    pub fn new(now: DateTime<Utc>, random: [u8; 10]) -> Self {
        let millis = u64::try_from(now.timestamp_millis()).unwrap_or(0);
        let id = uuid::Builder::from_unix_timestamp_millis(millis, &random).into_uuid();
        Self(id.hyphenated().to_string())
    }

    /// Anything but a canonical (lower-case, hyphenated) UUID names no dispute.
    pub fn parse(raw: &str) -> Option<Self> {
        let id = uuid::Uuid::try_parse(raw).ok()?;
        let canonical = id.hyphenated().to_string();
        (canonical == raw).then_some(Self(canonical))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

wire_enum! {
    /// Why a binding is reported.
    pub enum DisputeReason {
        /// The person who bound is not family.
        NotFamily = "not_family",
        /// Family, but bound without the relative's (or their family's) consent.
        NoAuthorisation = "no_authorisation",
        /// Someone bound under another's identity or relationship.
        Impersonation = "impersonation",
        /// Anything else: the free text says what.
        Other = "other",
    }
}

impl DisputeReason {
    pub fn label(self) -> &'static str {
        match self {
            Self::NotFamily => "非亲属关系",
            Self::NoAuthorisation => "未经亲属授权",
            Self::Impersonation => "冒用身份绑定",
            Self::Other => "其他原因",
        }
    }
}

wire_enum! {
    /// Where a dispute stands.
    pub enum DisputeStatus {
        /// In the authority's queue.
        Open = "open",
        /// The binding was found not legitimate: ended, and its guardian barred for a while.
        Upheld = "upheld",
        /// The binding stands.
        Dismissed = "dismissed",
    }
}

impl DisputeStatus {
    pub fn label(self) -> &'static str {
        match self {
            Self::Open => "待卫生健康部门核实",
            Self::Upheld => "举报属实,该绑定已解除",
            Self::Dismissed => "经核实,该绑定不存在问题",
        }
    }
}

wire_enum! {
    /// What the authority decides.
    pub enum DisputeDecision {
        Uphold = "uphold",
        Dismiss = "dismiss",
    }
}

impl DisputeDecision {
    /// The status a dispute takes on this decision.
    pub fn outcome(self) -> DisputeStatus {
        match self {
            Self::Uphold => DisputeStatus::Upheld,
            Self::Dismiss => DisputeStatus::Dismissed,
        }
    }
}

/// The reporter's own words: trimmed, at most [`MAX_DISPUTE_DETAILS_CHARS`] characters, no
/// control characters but line breaks (`\n`, `\r`). Personal text, so the store only keeps it sealed.
#[derive(Clone, PartialEq, Eq)]
pub struct DisputeDetails(String);

impl std::fmt::Debug for DisputeDetails {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DisputeDetails({} chars)", self.0.chars().count())
    }
}

impl DisputeDetails {
    /// `None` when the text is too long or holds control characters. Empty text is allowed
    /// but for `other`, where the text is the reason.
    pub fn parse(raw: &str, reason: DisputeReason) -> Option<Self> {
        let text = raw.trim();
        let fits = text.chars().count() <= MAX_DISPUTE_DETAILS_CHARS;
        let clean = text
            .chars()
            .all(|c| matches!(c, '\n' | '\r') || !c.is_control());
        let needed = reason == DisputeReason::Other && text.is_empty();
        (fits && clean && !needed).then(|| Self(text.to_owned()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Whether a ban that runs until `until` still bars binding at `now`.
pub fn banned(until: DateTime<Utc>, now: DateTime<Utc>) -> bool {
    now < until
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::wire::assert_wire_strings;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).unwrap().into()
    }

    #[test]
    fn wire_strings_and_labels() {
        assert_wire_strings!(DisputeReason, DisputeStatus, DisputeDecision);
        assert!(DisputeReason::ALL.iter().all(|r| !r.label().is_empty()));
        assert!(DisputeStatus::ALL.iter().all(|s| !s.label().is_empty()));
        assert_eq!(DisputeDecision::Uphold.outcome(), DisputeStatus::Upheld);
        assert_eq!(DisputeDecision::Dismiss.outcome(), DisputeStatus::Dismissed);
    }

    #[test]
    fn ids_sort_by_opening_time_and_parse_only_canonical_uuids() {
        let earlier = DisputeId::new(at("2026-11-28T10:00:00.001Z"), [0xff; 10]);
        let later = DisputeId::new(at("2026-11-28T10:00:00.002Z"), [0; 10]);
        assert!(earlier.as_str() < later.as_str());
        assert_eq!(DisputeId::parse(later.as_str()), Some(later.clone()));
        let upper = later.as_str().to_uppercase();
        for bad in ["", "123", "../x", upper.as_str()] {
            assert_eq!(DisputeId::parse(bad), None, "{bad}");
        }
        // Ids of one millisecond differ by their random part.
        let now = at("2026-11-28T10:00:00Z");
        assert_ne!(DisputeId::new(now, [1; 10]), DisputeId::new(now, [2; 10]));
    }

    #[test]
    fn details_are_counted_in_characters_and_required_only_for_other() {
        let reason = DisputeReason::NotFamily;
        let full = "陌".repeat(MAX_DISPUTE_DETAILS_CHARS);
        assert_eq!(
            full.len(),
            3 * MAX_DISPUTE_DETAILS_CHARS,
            "bytes are not the limit"
        );
        assert!(DisputeDetails::parse(&full, reason).is_some());
        assert!(DisputeDetails::parse(&format!("{full}陌"), reason).is_none());
        assert_eq!(
            DisputeDetails::parse(&format!("  {full}\n"), reason).map(|d| d.expose().len()),
            Some(full.len()),
            "trimmed before counting"
        );
        assert!(DisputeDetails::parse("第一行\n第二行\r\n第三行", reason).is_some());
        assert!(DisputeDetails::parse("bell\u{7}", reason).is_none());
        assert!(DisputeDetails::parse("", reason).is_some_and(|d| d.is_empty()));
        assert!(DisputeDetails::parse("  ", DisputeReason::Other).is_none());
        assert!(DisputeDetails::parse("不认识此人", DisputeReason::Other).is_some());
        let shown = format!("{:?}", DisputeDetails::parse("不认识此人", reason).unwrap());
        assert!(!shown.contains("不认识"), "{shown}");
    }

    #[test]
    fn a_ban_ends_exactly_at_its_end() {
        let until = at("2027-05-27T10:00:00Z");
        assert!(banned(until, until - Duration::seconds(1)));
        assert!(!banned(until, until));
        assert_eq!(dispute_ban(), Duration::days(180));
        assert_eq!(
            ban_ends(at("2026-11-28T10:00:00.999Z")),
            at("2027-05-27T10:00:00Z")
        );
    }
}
