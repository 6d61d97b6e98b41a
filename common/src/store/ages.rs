//! A child's age transitions (`domain::policy::AgeTransitions`): one small item per transition
//! still to come, written in the bind transaction, due on its day in the `by_expiry` index
//! (so the scheduled cleanup finds it without a Scan), and deleted by the write that makes it
//! moot: the cleanup's own once done, face verification for the one due at 7, and every
//! write that removes the binding for all of them. An item that exists is a transition still
//! to happen, so the cleanup acts on one only while it can delete it: twice is once.
//!
//! No TTL: DynamoDB deleting the end at 17 would leave the binding and its counters behind.

use aws_sdk_dynamodb::types::{Delete, TransactWriteItem};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::transaction::{Role, Transaction};
use super::{
    guardian_pk, log_recorded, ActionContext, AuditAction, AuditSubject, Due, Store, CLEANUP_ACTOR,
};
use crate::domain::binding::{Binding, BindingId, GuardianId};
use crate::domain::policy::{AgeTransition, AgeTransitions};
use crate::error::AppError;

/// Sort-key prefix of the age transitions in a guardian's partition.
pub(super) const AGE_TRANSITION_PREFIX: &str = "AGE#";

fn transition_sk(binding: &BindingId, transition: AgeTransition) -> String {
    format!(
        "{AGE_TRANSITION_PREFIX}{}#{}",
        binding.as_str(),
        transition.as_str()
    )
}

#[derive(Debug, Serialize, Deserialize)]
struct AgeTransitionItem {
    pk: String,
    sk: String,
    binding_id: String,
    guardian: String,
    relative_key: String,
    transition: AgeTransition,
    #[serde(flatten)]
    due: Due,
}

/// An age transition the cleanup found due: whose binding, and which transition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueTransition {
    pub guardian: GuardianId,
    pub binding: BindingId,
    pub relative_key: String,
    pub transition: AgeTransition,
}

impl Store {
    /// The items of a new binding's transitions (in the bind transaction).
    pub(super) fn age_transition_puts(
        &self,
        guardian: &GuardianId,
        binding: &BindingId,
        relative_key: &str,
        transitions: &AgeTransitions,
        bound_at: DateTime<Utc>,
    ) -> Result<Vec<(Role, TransactWriteItem)>, AppError> {
        transitions
            .schedule(bound_at)
            .into_iter()
            .map(|(transition, at)| {
                let (pk, sk) = (guardian_pk(guardian), transition_sk(binding, transition));
                let item = AgeTransitionItem {
                    due: Due::of(&pk, &sk, at),
                    pk,
                    sk,
                    binding_id: binding.as_str().into(),
                    guardian: guardian.as_str().into(),
                    relative_key: relative_key.into(),
                    transition,
                };
                Ok((
                    Role::AgeTransition,
                    self.put_item(Self::to_item(&item)?, None)?,
                ))
            })
            .collect()
    }

    /// Deletes of `binding`'s transition items that may still exist, `only` one or all (in the
    /// transactions that verify it by face or remove it). One already done is simply not there.
    pub(super) fn age_transition_deletes(
        &self,
        binding: &Binding,
        only: Option<AgeTransition>,
    ) -> Result<Vec<(Role, TransactWriteItem)>, AppError> {
        binding
            .transitions
            .schedule(binding.bound_at)
            .into_iter()
            .map(|(transition, _)| transition)
            .filter(|transition| only.is_none_or(|only| only == *transition))
            .map(|transition| {
                let delete = Delete::builder()
                    .table_name(&self.table)
                    .set_key(Some(Self::key(
                        guardian_pk(&binding.guardian),
                        transition_sk(&binding.id, transition),
                    )))
                    .build()
                    .map_err(|e| AppError::Internal(format!("build delete: {e}")))?;
                Ok((
                    Role::AgeTransition,
                    TransactWriteItem::builder().delete(delete).build(),
                ))
            })
            .collect()
    }

    /// The transition behind a due key, if it is still to happen.
    pub async fn due_age_transition(
        &self,
        pk: &str,
        sk: &str,
    ) -> Result<Option<DueTransition>, AppError> {
        let Some(item) = self.get(pk.into(), sk.into(), "get age transition").await? else {
            return Ok(None);
        };
        let item: AgeTransitionItem = serde_dynamo::from_item(item)
            .map_err(|e| AppError::Internal(format!("decode age transition: {e}")))?;
        let corrupt = |what: &str| AppError::Internal(format!("age transition has invalid {what}"));
        Ok(Some(DueTransition {
            guardian: GuardianId::parse(&item.guardian).ok_or_else(|| corrupt("guardian"))?,
            binding: BindingId::parse(&item.binding_id).ok_or_else(|| corrupt("binding id"))?,
            relative_key: item.relative_key,
            transition: item.transition,
        }))
    }

    /// Tells the guardian of a transition that changes nothing stored (face verification due,
    /// the end coming): its audit record, in one transaction with the deletion of its item,
    /// which holds only while the item is there. `false`: it was done already (another run) or
    /// made moot (face verified, the binding removed).
    pub async fn record_age_notice(
        &self,
        due: &DueTransition,
        action: AuditAction,
        ctx: ActionContext<'_>,
    ) -> Result<bool, AppError> {
        let delete = Delete::builder()
            .table_name(&self.table)
            .set_key(Some(Self::key(
                guardian_pk(&due.guardian),
                transition_sk(&due.binding, due.transition),
            )))
            .condition_expression("attribute_exists(pk)")
            .build()
            .map_err(|e| AppError::Internal(format!("build delete: {e}")))?;
        let subject = AuditSubject::Binding {
            actor: CLEANUP_ACTOR,
            guardian: &due.guardian,
            binding: &due.binding,
            relative_key: &due.relative_key,
        };
        let transaction = Transaction::new()
            .with(
                Role::AgeTransition,
                TransactWriteItem::builder().delete(delete).build(),
            )
            .with(Role::Audit, self.audit_put(subject, action, ctx)?);
        match self.transact("age notice", transaction).await {
            Ok(()) => {
                log_recorded(action, due.binding.as_str(), ctx);
                Ok(true)
            }
            Err(refusal) if refusal.refused(Role::AgeTransition) => Ok(false),
            Err(refusal) => Err(refusal.into_error()),
        }
    }
}
