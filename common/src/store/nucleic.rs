//! Nucleic-acid testing: tubes and who is in them, each person's tests (in the person's
//! partition beside the risk flags), and what a registration answered, for retries.

use aws_sdk_dynamodb::types::{TransactWriteItem, Update};
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use super::transaction::{Role, Transaction};
use super::{
    log_recorded, n, relative_pk, s, stamp, ActionContext, AuditAction, AuditSubject, Due,
    SortKeyOrder, Store,
};
use crate::domain::access_log::{AccessActor, AccessEntry, AccessKind};
use crate::domain::binding::{Binding, BindingId};
use crate::domain::nucleic::{
    person_status, Admission, LabResult, Site, TestStatus, TubeId, TubeKind, TubeState,
};
use crate::error::AppError;

const TUBE_SK: &str = "TUBE";
const MEMBER_PREFIX: &str = "M#";
pub(super) const TEST_PREFIX: &str = "H#T#";
const REPLAY_SK: &str = "SAMPLE";

/// A retried registration is answered from its record for this long.
fn replay_window() -> Duration {
    Duration::days(1)
}

fn tube_pk(tube: &TubeId) -> String {
    format!("T#{}", tube.as_str())
}

/// Fixed width, so sort keys order by time.
fn test_sk(sampled_at: DateTime<Utc>, tube: &TubeId) -> String {
    format!("{TEST_PREFIX}{}#{}", stamp(sampled_at), tube.as_str())
}

#[derive(Debug, Serialize, Deserialize)]
struct TubeItem {
    pk: String,
    sk: String,
    tube_id: String,
    kind: TubeKind,
    filled: u32,
    site_id: String,
    opened_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    result: Option<LabResult>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    reported_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    reported_by: Option<String>,
    expires_at: i64,
    #[serde(flatten)]
    due: Due,
}

#[derive(Debug, Serialize, Deserialize)]
struct MemberItem {
    pk: String,
    sk: String,
    relative_key: String,
    /// The person's test item this membership answers into.
    test_sk: String,
    position: u32,
    expires_at: i64,
    #[serde(flatten)]
    due: Due,
}

#[derive(Debug, Serialize, Deserialize)]
pub(super) struct TestItem {
    pk: String,
    pub(super) sk: String,
    tube_id: String,
    pub(super) kind: TubeKind,
    site_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    site_name: Option<String>,
    pub(super) sampled_at: DateTime<Utc>,
    pub(super) status: TestStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    reported_at: Option<DateTime<Utc>>,
    /// The binding whose code was scanned.
    binding_id: String,
    registered_by: String,
    expires_at: i64,
    #[serde(flatten)]
    due: Due,
}

#[derive(Debug, Serialize, Deserialize)]
struct ReplayItem {
    pk: String,
    sk: String,
    tube_id: String,
    relative_key: String,
    kind: TubeKind,
    position: u32,
    sampled_at: DateTime<Utc>,
    expires_at: i64,
    #[serde(flatten)]
    due: Due,
}

/// A person to add to a tube, after the code was verified and the tube judged.
pub struct SampleRegistration<'a> {
    pub tube: &'a TubeId,
    pub relative_key: &'a str,
    /// The binding of the scanned code.
    pub binding: &'a BindingId,
    pub site: &'a Site,
    /// The kind and place judged from the tube as read; the write checks the tube is unchanged.
    pub admission: Admission,
    pub actor: &'a str,
    /// The caller's `Idempotency-Key`, if sent.
    pub idempotency_key: Option<&'a str>,
}

/// What a registration answers (the first time and on a retry).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisteredSample {
    pub tube: TubeId,
    pub kind: TubeKind,
    pub position: u32,
    pub sampled_at: DateTime<Utc>,
}

#[derive(Debug)]
pub enum RegisterError {
    /// Someone else changed the tube since it was read: read it again and retry.
    TubeChanged,
    AlreadyInTube,
    /// The Idempotency-Key was used for another person or tube.
    KeyReused,
    /// The code's binding was unbound meanwhile.
    CodeRevoked,
    Failed(AppError),
}

impl From<AppError> for RegisterError {
    fn from(e: AppError) -> Self {
        Self::Failed(e)
    }
}

/// A tube as the lab sees it: its state, and whose tests its result answers.
#[derive(Debug, Clone)]
pub struct TubeRecord {
    pub kind: TubeKind,
    pub filled: u32,
    pub opened_at: DateTime<Utc>,
    pub result: Option<LabResult>,
    members: Vec<(String, String)>,
}

/// One of a person's tests, as the guardian reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestRecord {
    pub sampled_at: DateTime<Utc>,
    pub tube_id: String,
    pub kind: TubeKind,
    pub site_id: String,
    pub site_name: Option<String>,
    pub status: TestStatus,
    pub reported_at: Option<DateTime<Utc>>,
}

/// A page of tests, newest first, and the sort key the next page starts after.
#[derive(Debug, Clone)]
pub struct TestPage {
    pub tests: Vec<TestRecord>,
    pub next_after: Option<String>,
}

impl Store {
    /// Registrations and results sampled before this are past retention: reads ignore them.
    pub(super) fn retained_since(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        now - self.result_retention
    }

    /// The tube's state for admitting someone; `closed` once reported or past retention.
    pub async fn tube_state(
        &self,
        tube: &TubeId,
        now: DateTime<Utc>,
    ) -> Result<Option<TubeState>, AppError> {
        let Some(item) = self.get(tube_pk(tube), TUBE_SK.into(), "get tube").await? else {
            return Ok(None);
        };
        let item: TubeItem = serde_dynamo::from_item(item)
            .map_err(|e| AppError::Internal(format!("decode tube: {e}")))?;
        Ok(Some(TubeState {
            kind: item.kind,
            filled: item.filled,
            closed: item.result.is_some() || item.due.due_at <= now.timestamp(),
            site_id: item.site_id,
        }))
    }

    /// Adds a person to a tube: the tube's fill (only if unchanged since read and opened at
    /// the registering site; a new tube only if nobody opened it meanwhile), the person's
    /// place in it (once), their test, the audit record and, with an Idempotency-Key, what
    /// this answered — one transaction, only while the code's binding is active.
    pub async fn register_sample(
        &self,
        reg: SampleRegistration<'_>,
        ctx: ActionContext<'_>,
    ) -> Result<RegisteredSample, RegisterError> {
        let now = ctx.at;
        let expires = now + self.result_retention;
        let ttl = (expires + Duration::days(1)).timestamp();
        let position = reg.admission.position;
        let test_sk = test_sk(now, reg.tube);
        let tube_write = if position == 1 {
            let pk = tube_pk(reg.tube);
            let item = TubeItem {
                due: Due::of(&pk, TUBE_SK, expires),
                pk,
                sk: TUBE_SK.into(),
                tube_id: reg.tube.as_str().into(),
                kind: reg.admission.kind,
                filled: 1,
                site_id: reg.site.id().into(),
                opened_at: now,
                result: None,
                reported_at: None,
                reported_by: None,
                expires_at: ttl,
            };
            self.put_new(&item)?
        } else {
            let update = Update::builder()
                .table_name(&self.table)
                .set_key(Some(Self::key(tube_pk(reg.tube), TUBE_SK.into())))
                .update_expression("SET filled = :filled")
                // The tube's own site: another site's registration never lands in it, however
                // the reads and writes of two sites interleave.
                .condition_expression(
                    "filled = :seen AND site_id = :site AND attribute_not_exists(#result) AND due_at > :now",
                )
                .expression_attribute_names("#result", "result")
                .expression_attribute_values(":filled", n(position))
                .expression_attribute_values(":seen", n(position - 1))
                .expression_attribute_values(":site", s(reg.site.id()))
                .expression_attribute_values(":now", n(now.timestamp()))
                .build()
                .map_err(|e| AppError::Internal(format!("build update: {e}")))?;
            TransactWriteItem::builder().update(update).build()
        };
        let (member_pk, member_sk) = (
            tube_pk(reg.tube),
            format!("{MEMBER_PREFIX}{}", reg.relative_key),
        );
        let member = MemberItem {
            due: Due::of(&member_pk, &member_sk, expires),
            pk: member_pk,
            sk: member_sk,
            relative_key: reg.relative_key.into(),
            test_sk: test_sk.clone(),
            position,
            expires_at: ttl,
        };
        let test_pk = relative_pk(reg.relative_key);
        let test = TestItem {
            due: Due::of(&test_pk, &test_sk, expires),
            pk: test_pk,
            sk: test_sk,
            tube_id: reg.tube.as_str().into(),
            kind: reg.admission.kind,
            site_id: reg.site.id().into(),
            site_name: reg.site.name().map(str::to_owned),
            sampled_at: now,
            status: TestStatus::Pending,
            reported_at: None,
            binding_id: reg.binding.as_str().into(),
            registered_by: reg.actor.into(),
            expires_at: ttl,
        };
        let answer = RegisteredSample {
            tube: reg.tube.clone(),
            kind: reg.admission.kind,
            position,
            sampled_at: now,
        };
        let mut transaction = Transaction::new()
            .with(Role::Tube, tube_write)
            .with(Role::TubeMember, self.put_new(&member)?)
            .with(Role::Test, self.put_new(&test)?)
            .with(Role::AnchorCheck, self.anchor_active_check(reg.binding)?)
            .with(
                Role::Audit,
                self.audit_put(
                    AuditSubject::Relative {
                        actor: reg.actor,
                        relative_key: reg.relative_key,
                        binding: Some(reg.binding),
                        target: Some(reg.tube.as_str()),
                    },
                    AuditAction::SampleRegistered,
                    ctx,
                )?,
            )
            .with(
                Role::AccessLog,
                self.access_put(
                    reg.relative_key,
                    AccessEntry::new(
                        AccessKind::SampleRegistered,
                        AccessActor::Site {
                            id: Some(reg.site.id().into()),
                            name: reg.site.name().map(str::to_owned),
                        },
                        now,
                    )
                    .with_tube(reg.tube.as_str()),
                    ctx,
                )?,
            );
        if let Some(key) = reg.idempotency_key {
            let pk = self.replay_pk(reg.actor, key);
            let replay = ReplayItem {
                due: Due::of(&pk, REPLAY_SK, now + replay_window()),
                pk,
                sk: REPLAY_SK.into(),
                tube_id: reg.tube.as_str().into(),
                relative_key: reg.relative_key.into(),
                kind: answer.kind,
                position,
                sampled_at: now,
                expires_at: (now + replay_window() + Duration::days(1)).timestamp(),
            };
            transaction.push(Role::Replay, self.put_new(&replay)?);
        }
        let refusal = match self.transact("register sample", transaction).await {
            Ok(()) => {
                log_recorded(AuditAction::SampleRegistered, reg.tube.as_str(), ctx);
                return Ok(answer);
            }
            Err(refusal) => refusal,
        };
        if let (Some(key), true) = (reg.idempotency_key, refusal.refused(Role::Replay)) {
            return self
                .registration_replay(reg.actor, key, reg.tube, reg.relative_key)
                .await?
                .ok_or(RegisterError::TubeChanged);
        }
        if refusal.refused(Role::TubeMember) {
            Err(RegisterError::AlreadyInTube)
        } else if refusal.refused(Role::AnchorCheck) {
            Err(RegisterError::CodeRevoked)
        } else if refusal.refused(Role::Tube) || refusal.raced() {
            Err(RegisterError::TubeChanged)
        } else {
            Err(refusal.into_error().into())
        }
    }

    fn replay_pk(&self, actor: &str, idempotency_key: &str) -> String {
        format!("IK#{}", self.keys().replay_key(actor, idempotency_key))
    }

    /// The first answer to a request sent again: `None` if there was none (or it is past
    /// its window), `KeyReused` if the key was used for another person or tube.
    pub async fn registration_replay(
        &self,
        actor: &str,
        idempotency_key: &str,
        tube: &TubeId,
        relative_key: &str,
    ) -> Result<Option<RegisteredSample>, RegisterError> {
        let pk = self.replay_pk(actor, idempotency_key);
        let Some(item) = self
            .get(pk, REPLAY_SK.into(), "get registration replay")
            .await?
        else {
            return Ok(None);
        };
        let replay: ReplayItem = serde_dynamo::from_item(item)
            .map_err(|e| AppError::Internal(format!("decode replay: {e}")))?;
        if replay.tube_id != tube.as_str() || replay.relative_key != relative_key {
            return Err(RegisterError::KeyReused);
        }
        Ok(Some(RegisteredSample {
            tube: tube.clone(),
            kind: replay.kind,
            position: replay.position,
            sampled_at: replay.sampled_at,
        }))
    }

    /// A tube and its members, or `None` if unknown or past retention. One query.
    pub async fn tube(
        &self,
        tube: &TubeId,
        now: DateTime<Utc>,
    ) -> Result<Option<TubeRecord>, AppError> {
        let items = self
            .query_items(tube_pk(tube), "", SortKeyOrder::Ascending, "read tube")
            .await?;
        let mut record = None;
        let mut members = Vec::new();
        for item in items {
            let sk = item.get("sk").and_then(|v| v.as_s().ok()).cloned();
            match sk.as_deref() {
                Some(TUBE_SK) => {
                    let t: TubeItem = serde_dynamo::from_item(item)
                        .map_err(|e| AppError::Internal(format!("decode tube: {e}")))?;
                    record = (t.due.due_at > now.timestamp()).then_some(TubeRecord {
                        kind: t.kind,
                        filled: t.filled,
                        opened_at: t.opened_at,
                        result: t.result,
                        members: Vec::new(),
                    });
                }
                Some(sk) if sk.starts_with(MEMBER_PREFIX) => {
                    let m: MemberItem = serde_dynamo::from_item(item)
                        .map_err(|e| AppError::Internal(format!("decode member: {e}")))?;
                    members.push((m.relative_key, m.test_sk));
                }
                _ => {}
            }
        }
        Ok(record.map(|r| TubeRecord { members, ..r }))
    }

    /// Stores a tube's result and each member's status, with an audit record per person, in
    /// one transaction. `false` if the tube changed since `record` was read (retry).
    pub async fn record_result(
        &self,
        tube: &TubeId,
        record: &TubeRecord,
        result: LabResult,
        reported_at: DateTime<Utc>,
        actor: &str,
        ctx: ActionContext<'_>,
    ) -> Result<bool, AppError> {
        let mut update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(Self::key(tube_pk(tube), TUBE_SK.into())))
            .update_expression(
                "SET #result = :result, reported_at = :reported, reported_by = :actor",
            )
            .expression_attribute_names("#result", "result")
            .expression_attribute_values(":result", s(result.as_str()))
            .expression_attribute_values(":reported", s(crate::error::rfc3339(reported_at)))
            .expression_attribute_values(":actor", s(actor))
            .expression_attribute_values(":filled", n(record.filled));
        update = match record.result {
            None => {
                update.condition_expression("filled = :filled AND attribute_not_exists(#result)")
            }
            Some(previous) => update
                .condition_expression("filled = :filled AND #result = :previous")
                .expression_attribute_values(":previous", s(previous.as_str())),
        };
        let update = update
            .build()
            .map_err(|e| AppError::Internal(format!("build update: {e}")))?;
        let status = person_status(record.kind, result);
        let mut transaction = Transaction::new().with(
            Role::Tube,
            TransactWriteItem::builder().update(update).build(),
        );
        for (relative_key, test_sk) in &record.members {
            let test = Update::builder()
                .table_name(&self.table)
                .set_key(Some(Self::key(relative_pk(relative_key), test_sk.clone())))
                .update_expression("SET #status = :status, reported_at = :reported")
                .condition_expression("attribute_exists(pk)")
                .expression_attribute_names("#status", "status")
                .expression_attribute_values(":status", s(status.as_str()))
                .expression_attribute_values(":reported", s(crate::error::rfc3339(reported_at)))
                .build()
                .map_err(|e| AppError::Internal(format!("build update: {e}")))?;
            transaction.push(
                Role::Test,
                TransactWriteItem::builder().update(test).build(),
            );
            transaction.push(
                Role::Audit,
                self.audit_put(
                    AuditSubject::Relative {
                        actor,
                        relative_key,
                        binding: None,
                        target: Some(tube.as_str()),
                    },
                    AuditAction::ResultReported,
                    ctx,
                )?,
            );
            transaction.push(
                Role::AccessLog,
                self.access_put(
                    relative_key,
                    AccessEntry::new(AccessKind::ResultReported, AccessActor::Lab, ctx.at)
                        .with_tube(tube.as_str()),
                    ctx,
                )?,
            );
        }
        match self.transact("record result", transaction).await {
            Ok(()) => {
                log_recorded(AuditAction::ResultReported, tube.as_str(), ctx);
                Ok(true)
            }
            Err(refusal) if refusal.any_refused() || refusal.raced() => Ok(false),
            Err(refusal) => Err(refusal.into_error()),
        }
    }

    /// A person's tests sampled at or after `since` (and within retention), newest first,
    /// starting after the sort key `after`: one query.
    pub async fn tests_page(
        &self,
        relative_key: &str,
        since: DateTime<Utc>,
        after: Option<&str>,
        limit: usize,
        now: DateTime<Utc>,
    ) -> Result<TestPage, AppError> {
        let from = format!(
            "{TEST_PREFIX}{}",
            stamp(since.max(self.retained_since(now)))
        );
        let (items, next_after): (Vec<TestItem>, _) = self
            .newest_first_page(
                relative_pk(relative_key),
                TEST_PREFIX,
                &from,
                after,
                limit,
                "query tests",
            )
            .await?;
        Ok(TestPage {
            tests: items
                .into_iter()
                .map(|t| TestRecord {
                    sampled_at: t.sampled_at,
                    tube_id: t.tube_id,
                    kind: t.kind,
                    site_id: t.site_id,
                    site_name: t.site_name,
                    status: t.status,
                    reported_at: t.reported_at,
                })
                .collect(),
            next_after,
        })
    }

    /// Records that a guardian read a relative's results: in the relative's audit trail and
    /// its access log, together.
    pub async fn record_results_viewed(
        &self,
        binding: &Binding,
        ctx: ActionContext<'_>,
    ) -> Result<(), AppError> {
        let subject = AuditSubject::Relative {
            actor: binding.guardian.as_str(),
            relative_key: &binding.relative_key,
            binding: Some(&binding.id),
            target: None,
        };
        self.record_read(
            binding,
            subject,
            AuditAction::ResultsViewed,
            AccessKind::ResultsRead,
            ctx,
        )
        .await
    }
}
