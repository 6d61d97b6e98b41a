//! The access log a relative's guardians read: who showed, printed, scanned or tested the
//! relative's code, and what happened to the bindings. Staff appear by their site, guardians
//! by their handle, never anyone by name or platform id.

use chrono::{DateTime, Duration, DurationRound, Utc};

use super::code::ScanPurpose;
use super::wire::wire_enum;

/// How long an entry is kept (the TTL and the cleanup enforce it; reads ignore older ones).
/// Long enough to look back over a testing campaign and a dispute about a binding.
pub const ACCESS_LOG_RETENTION_DAYS: i64 = 180;

pub fn access_log_retention() -> Duration {
    Duration::days(ACCESS_LOG_RETENTION_DAYS)
}

wire_enum! {
    pub enum AccessKind {
        /// A guardian showed the online code: at most one entry per guardian per hour.
        CodeShown = "code_shown",
        OfflineCardIssued = "offline_card_issued",
        OfflineCardDownloaded = "offline_card_downloaded",
        CodeScanned = "code_scanned",
        SampleRegistered = "sample_registered",
        ResultReported = "result_reported",
        ResultsRead = "results_read",
        Bound = "bound",
        Verified = "verified",
        Unbound = "unbound",
        /// The cleanup removed a binding never verified in time.
        BindingExpired = "binding_expired",
        /// The binding ended on the child's 17th birthday (the kin code is for 0–16).
        AgedOut = "aged_out",
        /// A guardian downloaded everything held about the relative.
        DataExported = "data_exported",
        /// A guardian reported a co-guardian's binding to the health authority.
        BindingDisputed = "binding_disputed",
        /// The authority upheld a report: the disputed binding ended.
        DisputeUpheld = "dispute_upheld",
        /// The authority dismissed a report: the binding stays.
        DisputeDismissed = "dispute_dismissed",
    }
}

impl AccessKind {
    pub fn label(self) -> &'static str {
        match self {
            Self::CodeShown => "出示亲属码",
            Self::OfflineCardIssued => "生成离线码",
            Self::OfflineCardDownloaded => "下载离线码",
            Self::CodeScanned => "扫码核验",
            Self::SampleRegistered => "核酸采样登记",
            Self::ResultReported => "核酸结果回传",
            Self::ResultsRead => "查询核酸结果",
            Self::Bound => "绑定亲属",
            Self::Verified => "完成认证",
            Self::Unbound => "解除绑定",
            Self::BindingExpired => "绑定超时未认证,已失效",
            Self::AgedOut => "已满17周岁,绑定自动解除",
            Self::DataExported => "导出个人信息",
            Self::BindingDisputed => "举报其他监护人的绑定",
            Self::DisputeUpheld => "举报成立,该绑定已解除",
            Self::DisputeDismissed => "举报不成立",
        }
    }
}

/// Who did it, as the guardians may see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccessActor {
    /// One of the relative's guardians, by handle (`Keys::guardian_handle`).
    Guardian {
        handle: String,
    },
    /// Testing-site staff, by site; the site id is absent when the caller's token names none.
    Site {
        id: Option<String>,
        name: Option<String>,
    },
    Lab,
    /// The health authority (a dispute's outcome), never by person.
    Authority,
    /// The scheduled job.
    System,
}

/// One line of the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessEntry {
    pub at: DateTime<Utc>,
    pub kind: AccessKind,
    pub actor: AccessActor,
    /// A scan's purpose.
    pub purpose: Option<ScanPurpose>,
    /// The sample tube of a registration or a result.
    pub tube_id: Option<String>,
}

impl AccessEntry {
    pub fn new(kind: AccessKind, actor: AccessActor, at: DateTime<Utc>) -> Self {
        Self {
            at,
            kind,
            actor,
            purpose: None,
            tube_id: None,
        }
    }

    pub fn with_purpose(self, purpose: ScanPurpose) -> Self {
        Self {
            purpose: Some(purpose),
            ..self
        }
    }

    /// Whether the guardian with this handle did it.
    pub fn is_by(&self, handle: &str) -> bool {
        matches!(&self.actor, AccessActor::Guardian { handle: by } if by == handle)
    }

    pub fn with_tube(self, tube_id: impl Into<String>) -> Self {
        Self {
            tube_id: Some(tube_id.into()),
            ..self
        }
    }
}

/// The hour a "code shown" entry stands for. China time is a whole number of hours from UTC,
/// so the UTC hour is the China hour.
pub fn shown_hour(at: DateTime<Utc>) -> DateTime<Utc> {
    at.duration_trunc(Duration::hours(1))
        .expect("an hour divides any timestamp in range")
}

/// Whether a guardian who last had a "code shown" entry at `last` needs one for `now`.
pub fn needs_shown_entry(last: Option<DateTime<Utc>>, now: DateTime<Utc>) -> bool {
    last.is_none_or(|last| last < shown_hour(now))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::china_time::china_time;
    use crate::domain::wire::assert_wire_strings;

    fn at(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    #[test]
    fn wire_strings_and_labels() {
        assert_wire_strings!(AccessKind);
        let labels: std::collections::BTreeSet<_> = AccessKind::ALL.map(AccessKind::label).into();
        assert_eq!(labels.len(), AccessKind::ALL.len());
    }

    #[test]
    fn one_shown_entry_per_hour_on_the_china_clock() {
        let first = at("2026-12-07T01:59:59Z");
        assert_eq!(shown_hour(first), at("2026-12-07T01:00:00Z"));
        // 09:59:59 and 10:00:00 in Beijing are two hours there as well.
        assert_eq!(china_time(first).format("%H").to_string(), "09");
        assert!(needs_shown_entry(None, first));
        assert!(!needs_shown_entry(Some(shown_hour(first)), first));
        let next_hour = at("2026-12-07T02:00:00Z");
        assert!(needs_shown_entry(Some(shown_hour(first)), next_hour));
        // A later mark (a clock ahead elsewhere) never asks for an earlier entry.
        assert!(!needs_shown_entry(Some(next_hour), first));
    }
}
