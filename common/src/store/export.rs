//! What an export reads that no other use case does: the whole of a binding's own audit
//! trail, and the record of the export itself (audit and access log together).

use super::{
    audit_prefix, guardian_pk, ActionContext, AuditAction, AuditLine, SortKeyOrder, Store,
};
use crate::domain::access_log::AccessKind;
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
        self.record_read(
            binding,
            super::bindings::binding_subject(binding),
            AuditAction::DataExported,
            AccessKind::DataExported,
            ctx,
        )
        .await
    }
}
