//! DynamoDB adapter: the one table that holds bindings, counters and the audit trail.
//!
//! Item layout (`pk` / `sk`):
//! - `G#<guardian>` / `COUNT`: how many relatives the guardian holds (`bound`).
//! - `G#<guardian>` / `B#<binding id>`: a binding; name and ID number sealed with AEAD.
//! - `G#<guardian>` / `L#<relative key>`: guard item that makes one binding per pair.
//! - `G#<guardian>` / `A#<binding id>#<time>#<action>#<request id>`: audit records, with TTL.
//! - `R#<relative key>` / `COUNT`: how many guardians hold the relative (`guardians`).
//!
//! The relative key is an HMAC of the ID number, so guardians binding the same person meet
//! on one counter without the number being a key.

use std::collections::HashMap;

use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{AttributeValue, Delete, Put, TransactWriteItem, Update};
use aws_sdk_dynamodb::Client;
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::crypto::{Keys, SealContext};
use crate::domain::binding::{Binding, BindingId, BindingStatus, GuardianId, Verification};
use crate::domain::expiry_bucket;
use crate::domain::name::{mask_name, PersonName};
use crate::domain::policy::{
    AgeBand, Eligibility, VerificationMethod, MAX_GUARDIANS_PER_RELATIVE,
    MAX_RELATIVES_PER_GUARDIAN,
};
use crate::domain::relationship::Relationship;
use crate::domain::resident_id::{mask_resident_id, ResidentId};
use crate::error::AppError;

/// Audit records are kept one year: long enough for disputes over a binding, short enough
/// that people's traces do not outlive the epidemic response.
pub fn audit_retention() -> Duration {
    Duration::days(365)
}

const COUNT_SK: &str = "COUNT";

fn guardian_pk(guardian: &GuardianId) -> String {
    format!("G#{}", guardian.as_str())
}
fn relative_pk(relative_key: &str) -> String {
    format!("R#{relative_key}")
}
fn binding_sk(id: &BindingId) -> String {
    format!("B#{}", id.as_str())
}
fn link_sk(relative_key: &str) -> String {
    format!("L#{relative_key}")
}
fn audit_prefix(id: &BindingId) -> String {
    format!("A#{}#", id.as_str())
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}
fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

#[derive(Debug, Serialize, Deserialize)]
struct BindingRecord {
    pk: String,
    sk: String,
    binding_id: String,
    guardian: String,
    relative_key: String,
    name_sealed: String,
    id_number_sealed: String,
    relationship: Relationship,
    age_band: AgeBand,
    verification_method: VerificationMethod,
    status: BindingStatus,
    bound_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    verified_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    verification: Option<Verification>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pending_certify_id: Option<String>,
    #[serde(default)]
    face_failures: Vec<DateTime<Utc>>,
    version: u64,
}

#[derive(Debug, Serialize)]
struct LinkRecord<'a> {
    pk: String,
    sk: String,
    binding_id: &'a str,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditAction {
    Bound,
    FaceStarted,
    FaceFailed,
    Verified,
    Unbound,
}

#[derive(Debug, Serialize, Deserialize)]
struct AuditRecord {
    pk: String,
    sk: String,
    action: AuditAction,
    guardian: String,
    binding_id: String,
    relative_key: String,
    request_id: String,
    at: DateTime<Utc>,
    /// TTL attribute (epoch seconds).
    expires_at: i64,
    expiry_bucket: String,
}

/// One log line per recorded action: the binding and request, never the person.
fn log_recorded(action: AuditAction, binding: &BindingId, ctx: ActionContext<'_>) {
    tracing::info!(
        ?action,
        binding = binding.as_str(),
        request_id = ctx.request_id,
        "recorded"
    );
}

/// Who did what, when: every write carries one.
#[derive(Debug, Clone, Copy)]
pub struct ActionContext<'a> {
    pub request_id: &'a str,
    pub at: DateTime<Utc>,
}

/// Everything a new binding needs; the store seals the personal data.
pub struct NewBinding<'a> {
    pub id: &'a BindingId,
    pub guardian: &'a GuardianId,
    pub relative_key: &'a str,
    pub name: &'a PersonName,
    pub id_number: &'a ResidentId,
    pub relationship: Relationship,
    pub eligibility: Eligibility,
}

/// Why a bind transaction was refused.
#[derive(Debug)]
pub enum CreateBindingError {
    /// A binding with this id exists: a retry of the same request, or a reused key.
    IdTaken,
    AlreadyBound,
    GuardianFull,
    RelativeFull,
    Failed(AppError),
}

impl From<AppError> for CreateBindingError {
    fn from(e: AppError) -> Self {
        Self::Failed(e)
    }
}

/// Maps an SDK failure: transport trouble and throttling are a dependency outage (503);
/// anything else is our bug (500). Details go to the logs only.
pub fn dynamodb_error<E>(
    operation: &'static str,
    err: SdkError<E, aws_sdk_dynamodb::config::http::HttpResponse>,
) -> AppError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    const TRANSIENT: [&str; 6] = [
        "ProvisionedThroughputExceededException",
        "RequestLimitExceeded",
        "ThrottlingException",
        "InternalServerError",
        "ServiceUnavailable",
        "TransactionInProgressException",
    ];
    let detail = format!("{operation}: {}", DisplayErrorContext(&err));
    match &err {
        SdkError::ServiceError(ctx) if !TRANSIENT.contains(&ctx.err().code().unwrap_or("")) => {
            AppError::Internal(detail)
        }
        _ => AppError::DependencyUnavailable(detail),
    }
}

pub struct Store {
    client: Client,
    table: String,
    keys: Keys,
}

impl Store {
    pub fn new(client: Client, table: impl Into<String>, keys: Keys) -> Self {
        Self {
            client,
            table: table.into(),
            keys,
        }
    }

    pub fn keys(&self) -> &Keys {
        &self.keys
    }

    fn to_item<T: Serialize>(record: &T) -> Result<HashMap<String, AttributeValue>, AppError> {
        serde_dynamo::to_item(record).map_err(|e| AppError::Internal(format!("encode item: {e}")))
    }

    fn audit_put(
        &self,
        binding: &BindingId,
        guardian: &GuardianId,
        relative_key: &str,
        action: AuditAction,
        ctx: ActionContext<'_>,
    ) -> Result<TransactWriteItem, AppError> {
        let expires = ctx.at + audit_retention();
        let action_name = serde_json::to_value(action).expect("enum serialises");
        let record = AuditRecord {
            pk: guardian_pk(guardian),
            sk: format!(
                "{}{}#{}#{}",
                audit_prefix(binding),
                ctx.at.format("%Y-%m-%dT%H:%M:%S%.6fZ"),
                action_name.as_str().unwrap_or_default(),
                ctx.request_id
            ),
            action,
            guardian: guardian.as_str().into(),
            binding_id: binding.as_str().into(),
            relative_key: relative_key.into(),
            request_id: ctx.request_id.into(),
            at: ctx.at,
            expires_at: expires.timestamp(),
            expiry_bucket: expiry_bucket(expires),
        };
        self.put_item(Self::to_item(&record)?, None)
    }

    fn put_item(
        &self,
        item: HashMap<String, AttributeValue>,
        condition: Option<&str>,
    ) -> Result<TransactWriteItem, AppError> {
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .set_condition_expression(condition.map(str::to_owned))
            .build()
            .map_err(|e| AppError::Internal(format!("build put: {e}")))?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    fn key(pk: String, sk: String) -> HashMap<String, AttributeValue> {
        HashMap::from([("pk".to_owned(), s(pk)), ("sk".to_owned(), s(sk))])
    }

    /// Adds `delta` to a counter, refusing to pass `max` or go below zero.
    fn counter_update(
        &self,
        pk: String,
        attribute: &str,
        delta: i64,
        max: u32,
    ) -> Result<TransactWriteItem, AppError> {
        let mut update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(Self::key(pk, COUNT_SK.into())))
            .update_expression("SET #c = if_not_exists(#c, :zero) + :delta")
            .expression_attribute_names("#c", attribute)
            .expression_attribute_values(":zero", n(0))
            .expression_attribute_values(":delta", n(delta));
        update = if delta > 0 {
            update
                .condition_expression("attribute_not_exists(#c) OR #c < :max")
                .expression_attribute_values(":max", n(max))
        } else {
            update
                .condition_expression("#c >= :one")
                .expression_attribute_values(":one", n(-delta))
        };
        let update = update
            .build()
            .map_err(|e| AppError::Internal(format!("build update: {e}")))?;
        Ok(TransactWriteItem::builder().update(update).build())
    }

    async fn transact(
        &self,
        operation: &'static str,
        items: Vec<TransactWriteItem>,
    ) -> Result<(), SdkError<TransactWriteItemsError, aws_sdk_dynamodb::config::http::HttpResponse>>
    {
        self.client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await
            .map(|_| ())
            .inspect_err(|e| tracing::debug!(operation, error = %DisplayErrorContext(e), "transaction refused"))
    }

    /// Which items of a cancelled transaction failed their condition.
    fn failed_conditions(
        err: &SdkError<TransactWriteItemsError, aws_sdk_dynamodb::config::http::HttpResponse>,
    ) -> Option<Vec<bool>> {
        match err {
            SdkError::ServiceError(ctx) => match ctx.err() {
                TransactWriteItemsError::TransactionCanceledException(e) => Some(
                    e.cancellation_reasons()
                        .iter()
                        .map(|r| r.code() == Some("ConditionalCheckFailed"))
                        .collect(),
                ),
                _ => None,
            },
            _ => None,
        }
    }

    /// One transaction: binding, pair guard, both counters and the audit record.
    pub async fn create_binding(
        &self,
        new: NewBinding<'_>,
        ctx: ActionContext<'_>,
    ) -> Result<Binding, CreateBindingError> {
        let record = BindingRecord {
            pk: guardian_pk(new.guardian),
            sk: binding_sk(new.id),
            binding_id: new.id.as_str().into(),
            guardian: new.guardian.as_str().into(),
            relative_key: new.relative_key.into(),
            name_sealed: self.keys.seal(
                new.name.expose(),
                SealContext::RelativeName {
                    binding_id: new.id.as_str(),
                },
            ),
            id_number_sealed: self.keys.seal(
                new.id_number.expose(),
                SealContext::RelativeIdNumber {
                    binding_id: new.id.as_str(),
                },
            ),
            relationship: new.relationship,
            age_band: new.eligibility.band,
            verification_method: new.eligibility.method,
            status: BindingStatus::PendingVerification,
            bound_at: ctx.at,
            verified_at: None,
            verification: None,
            pending_certify_id: None,
            face_failures: Vec::new(),
            version: 1,
        };
        let link = LinkRecord {
            pk: guardian_pk(new.guardian),
            sk: link_sk(new.relative_key),
            binding_id: new.id.as_str(),
        };
        let items = vec![
            self.put_item(Self::to_item(&record)?, Some("attribute_not_exists(pk)"))?,
            self.put_item(Self::to_item(&link)?, Some("attribute_not_exists(pk)"))?,
            self.counter_update(
                guardian_pk(new.guardian),
                "bound",
                1,
                MAX_RELATIVES_PER_GUARDIAN,
            )?,
            self.counter_update(
                relative_pk(new.relative_key),
                "guardians",
                1,
                MAX_GUARDIANS_PER_RELATIVE,
            )?,
            self.audit_put(
                new.id,
                new.guardian,
                new.relative_key,
                AuditAction::Bound,
                ctx,
            )?,
        ];
        match self.transact("bind", items).await {
            Ok(()) => {
                log_recorded(AuditAction::Bound, new.id, ctx);
                Ok(self.binding_from_record(record)?)
            }
            Err(err) => Err(match Self::failed_conditions(&err).as_deref() {
                Some([true, ..]) => CreateBindingError::IdTaken,
                Some([_, true, ..]) => CreateBindingError::AlreadyBound,
                Some([_, _, true, ..]) => CreateBindingError::GuardianFull,
                Some([_, _, _, true, ..]) => CreateBindingError::RelativeFull,
                _ => CreateBindingError::Failed(dynamodb_error("bind", err)),
            }),
        }
    }

    fn binding_from_record(&self, r: BindingRecord) -> Result<Binding, AppError> {
        let opened = |sealed: &str, ctx| {
            self.keys.open(sealed, ctx).map_err(|_| {
                AppError::Internal(format!(
                    "sealed field of binding {} does not open",
                    r.binding_id
                ))
            })
        };
        let name = opened(
            &r.name_sealed,
            SealContext::RelativeName {
                binding_id: &r.binding_id,
            },
        )?;
        let id_number = opened(
            &r.id_number_sealed,
            SealContext::RelativeIdNumber {
                binding_id: &r.binding_id,
            },
        )?;
        let corrupt = |what: &str| AppError::Internal(format!("stored binding has invalid {what}"));
        Ok(Binding {
            id: BindingId::parse(&r.binding_id).ok_or_else(|| corrupt("id"))?,
            guardian: GuardianId::parse(&r.guardian).ok_or_else(|| corrupt("guardian"))?,
            relative_key: r.relative_key,
            masked_name: mask_name(&name),
            masked_id_number: mask_resident_id(&id_number),
            relationship: r.relationship,
            age_band: r.age_band,
            verification_method: r.verification_method,
            status: r.status,
            bound_at: r.bound_at,
            verified_at: r.verified_at,
            verification: r.verification,
            pending_certify_id: r.pending_certify_id,
            face_failures: r.face_failures,
            version: r.version,
        })
    }

    /// The caller's binding, or `None`: another guardian's binding is simply not found.
    pub async fn binding(
        &self,
        guardian: &GuardianId,
        id: &BindingId,
    ) -> Result<Option<Binding>, AppError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(guardian_pk(guardian), binding_sk(id))))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| dynamodb_error("get binding", e))?;
        out.item
            .map(|item| {
                let record: BindingRecord = serde_dynamo::from_item(item)
                    .map_err(|e| AppError::Internal(format!("decode binding: {e}")))?;
                self.binding_from_record(record)
            })
            .transpose()
    }

    /// All of the caller's bindings, newest first (at most eight, one page).
    pub async fn bindings(&self, guardian: &GuardianId) -> Result<Vec<Binding>, AppError> {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
            .expression_attribute_values(":pk", s(guardian_pk(guardian)))
            .expression_attribute_values(":prefix", s("B#"))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| dynamodb_error("list bindings", e))?;
        let records: Vec<BindingRecord> =
            serde_dynamo::from_items(out.items.unwrap_or_default())
                .map_err(|e| AppError::Internal(format!("decode bindings: {e}")))?;
        let mut bindings = records
            .into_iter()
            .map(|r| self.binding_from_record(r))
            .collect::<Result<Vec<_>, _>>()?;
        bindings.sort_by(|a, b| {
            b.bound_at
                .cmp(&a.bound_at)
                .then_with(|| b.id.as_str().cmp(a.id.as_str()))
        });
        Ok(bindings)
    }

    /// Applies `set` to a pending binding if nobody changed it since it was read, with an
    /// audit record in the same transaction. A lost race is a 409 the client can retry.
    async fn update_pending(
        &self,
        binding: &Binding,
        set: &str,
        values: Vec<(&str, AttributeValue)>,
        action: AuditAction,
        ctx: ActionContext<'_>,
    ) -> Result<(), AppError> {
        let mut update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(Self::key(
                guardian_pk(&binding.guardian),
                binding_sk(&binding.id),
            )))
            .update_expression(format!("{set}, version = version + :one"))
            .condition_expression("version = :version AND #status = :pending")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":version", n(binding.version))
            .expression_attribute_values(":pending", s("pending_verification"));
        for (name, value) in values {
            update = update.expression_attribute_values(name, value);
        }
        let update = update
            .build()
            .map_err(|e| AppError::Internal(format!("build update: {e}")))?;
        let items = vec![
            TransactWriteItem::builder().update(update).build(),
            self.audit_put(
                &binding.id,
                &binding.guardian,
                &binding.relative_key,
                action,
                ctx,
            )?,
        ];
        match self.transact("update binding", items).await {
            Ok(()) => {
                log_recorded(action, &binding.id, ctx);
                Ok(())
            }
            Err(err) if matches!(Self::failed_conditions(&err).as_deref(), Some([true, ..])) => {
                Err(AppError::Conflict)
            }
            Err(err) => Err(dynamodb_error("update binding", err)),
        }
    }

    pub async fn start_face(
        &self,
        binding: &Binding,
        certify_id: &str,
        ctx: ActionContext<'_>,
    ) -> Result<(), AppError> {
        self.update_pending(
            binding,
            "SET pending_certify_id = :certify",
            vec![(":certify", s(certify_id))],
            AuditAction::FaceStarted,
            ctx,
        )
        .await
    }

    /// Records a failed attempt; the session is spent, the next attempt starts a new one.
    pub async fn record_face_failure(
        &self,
        binding: &Binding,
        recent_failures: &[DateTime<Utc>],
        ctx: ActionContext<'_>,
    ) -> Result<(), AppError> {
        let failures = serde_dynamo::to_attribute_value(recent_failures)
            .map_err(|e| AppError::Internal(format!("encode failures: {e}")))?;
        self.update_pending(
            binding,
            "REMOVE pending_certify_id SET face_failures = :failures",
            vec![(":failures", failures)],
            AuditAction::FaceFailed,
            ctx,
        )
        .await
    }

    /// Makes a pending binding usable; returns it as now stored.
    pub async fn activate(
        &self,
        binding: Binding,
        verification: Verification,
        ctx: ActionContext<'_>,
    ) -> Result<Binding, AppError> {
        let encoded = serde_dynamo::to_attribute_value(&verification)
            .map_err(|e| AppError::Internal(format!("encode verification: {e}")))?;
        let verified_at = serde_dynamo::to_attribute_value(ctx.at)
            .map_err(|e| AppError::Internal(format!("encode time: {e}")))?;
        self.update_pending(
            &binding,
            "REMOVE pending_certify_id SET #status = :active, verified_at = :at, verification = :verification",
            vec![(":active", s("active")), (":at", verified_at), (":verification", encoded)],
            AuditAction::Verified,
            ctx,
        )
        .await?;
        Ok(Binding {
            status: BindingStatus::Active,
            verified_at: Some(ctx.at),
            verification: Some(verification),
            pending_certify_id: None,
            version: binding.version + 1,
            ..binding
        })
    }

    /// One transaction: the binding (unchanged since read), its pair guard, both counters
    /// released, and the audit record.
    pub async fn delete_binding(
        &self,
        binding: &Binding,
        ctx: ActionContext<'_>,
    ) -> Result<(), AppError> {
        let delete = |sk: String, condition: Option<&str>| -> Result<TransactWriteItem, AppError> {
            let mut d = Delete::builder()
                .table_name(&self.table)
                .set_key(Some(Self::key(guardian_pk(&binding.guardian), sk)))
                .set_condition_expression(condition.map(str::to_owned));
            if condition.is_some() {
                d = d.expression_attribute_values(":version", n(binding.version));
            }
            let d = d
                .build()
                .map_err(|e| AppError::Internal(format!("build delete: {e}")))?;
            Ok(TransactWriteItem::builder().delete(d).build())
        };
        let items = vec![
            delete(binding_sk(&binding.id), Some("version = :version"))?,
            delete(link_sk(&binding.relative_key), None)?,
            self.counter_update(guardian_pk(&binding.guardian), "bound", -1, 0)?,
            self.counter_update(relative_pk(&binding.relative_key), "guardians", -1, 0)?,
            self.audit_put(
                &binding.id,
                &binding.guardian,
                &binding.relative_key,
                AuditAction::Unbound,
                ctx,
            )?,
        ];
        match self.transact("unbind", items).await {
            Ok(()) => {
                log_recorded(AuditAction::Unbound, &binding.id, ctx);
                Ok(())
            }
            Err(err) if matches!(Self::failed_conditions(&err).as_deref(), Some([true, ..])) => {
                Err(AppError::Conflict)
            }
            Err(err) => Err(dynamodb_error("unbind", err)),
        }
    }

    /// Whether this guardian already unbound this binding (so a repeated DELETE succeeds).
    pub async fn was_unbound(
        &self,
        guardian: &GuardianId,
        id: &BindingId,
    ) -> Result<bool, AppError> {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
            .filter_expression("#action = :unbound")
            .expression_attribute_names("#action", "action")
            .expression_attribute_values(":pk", s(guardian_pk(guardian)))
            .expression_attribute_values(":prefix", s(audit_prefix(id)))
            .expression_attribute_values(":unbound", s("unbound"))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| dynamodb_error("audit lookup", e))?;
        Ok(out.count > 0)
    }
}
