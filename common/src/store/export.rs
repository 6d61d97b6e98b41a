//! What an export reads that no other use case does: the whole of a binding's own audit
//! trail, and the record of the export itself (audit and access log together).

use super::transaction::{Role, Transaction};
use super::{
    audit_prefix, guardian_pk, log_recorded, ActionContext, AuditAction, AuditLine, SortKeyOrder,
    Store,
};
use crate::domain::access_log::{AccessEntry, AccessKind};
use crate::domain::binding::Binding;
use crate::error::AppError;

impl Store {
    /// Everything recorded about `binding` in its guardian's partition, oldest first.
    pub async fn binding_audit_trail(&self, binding: &Binding) -> Result<Vec<AuditLine>, AppError> {
        self.query_prefix(
            guardian_pk(&binding.guardian),
            &audit_prefix(&binding.id),
            SortKeyOrder::Ascending,
            "read binding audit trail",
        )
        .await
    }

    /// Records an export before it is answered: in the binding's audit trail and the
    /// relative's access log, together.
    pub async fn record_export(
        &self,
        binding: &Binding,
        ctx: ActionContext<'_>,
    ) -> Result<(), AppError> {
        let entry = AccessEntry::new(
            AccessKind::DataExported,
            self.binding_actor(binding),
            ctx.at,
        );
        let transaction = Transaction::new()
            .with(
                Role::Audit,
                self.audit_put(
                    super::bindings::binding_subject(binding),
                    AuditAction::DataExported,
                    ctx,
                )?,
            )
            .with(
                Role::AccessLog,
                self.access_put(&binding.relative_key, entry, ctx)?,
            )
            .with(Role::Binding, self.binding_present_check(binding)?);
        match self.transact("record export", transaction).await {
            Ok(()) => {}
            // Ended meanwhile: like any read through a binding that is gone.
            Err(refusal) if refusal.refused(Role::Binding) => {
                return Err(AppError::BindingNotFound)
            }
            Err(refusal) => return Err(refusal.into_error()),
        }
        log_recorded(AuditAction::DataExported, binding.id.as_str(), ctx);
        Ok(())
    }
}
