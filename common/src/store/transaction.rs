//! Transactions whose items carry a name: what each item is in the table (`Role`). DynamoDB
//! answers a cancelled `TransactWriteItems` with one reason per item, in the order the items
//! were sent; a `Refusal` pairs them with the names the items were sent under, so callers
//! ask "did the pair guard refuse?" (`refused(Role::PairGuard)`), never "did item 1?". Adding,
//! removing or moving an item leaves every refusal read as before; `ItemOrder` lets the tests
//! send the items in other orders to show it.

use aws_sdk_dynamodb::error::{DisplayErrorContext, SdkError};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::TransactWriteItem;

use super::{dynamodb_error, Store};
use crate::error::AppError;

pub(super) type TransactError =
    SdkError<TransactWriteItemsError, aws_sdk_dynamodb::config::http::HttpResponse>;

/// What an item of a transaction is, by the table's item layout (`store`'s module comment).
/// Several items of one transaction may share a role (a lab result's tests and audit records).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Role {
    /// `G#<guardian>` / `B#<binding id>`.
    Binding,
    /// `G#<guardian>` / `L#<relative key>`: one binding per pair.
    PairGuard,
    /// `G#<guardian>` / `AGE#<binding id>#<transition>`: an age transition still to come.
    AgeTransition,
    /// `G#<guardian>` / `COUNT`.
    GuardianCount,
    /// `R#<relative key>` / `COUNT`.
    RelativeCount,
    /// `K#<binding id>` / `ANCHOR`, written or revoked.
    Anchor,
    /// `K#<binding id>` / `ANCHOR`, only checked (absent, or active).
    AnchorCheck,
    /// `REVOKED` / `<serial>`.
    Revocation,
    /// `R#<relative key>` / `OQ#<China date>`: the day's offline cards.
    CardQuota,
    /// `K#<binding id>` / `O#<generated at>#<serial>`.
    OfflineCard,
    /// `K#<binding id>` or `HS#<sheet id>` / `OP#<S3 key>`.
    ImageInFlight,
    /// `HS#<sheet id>` / `SHEET`.
    HouseholdSheet,
    /// `T#<tube>` / `TUBE`.
    Tube,
    /// `T#<tube>` / `M#<relative key>`.
    TubeMember,
    /// `R#<relative key>` / `H#T#…`: a person's test.
    Test,
    /// `IK#…` / `SAMPLE`: what a registration answered.
    Replay,
    /// `R#<relative key>` / `H#F#<flag>`.
    RiskFlag,
    /// `R#<relative key>` / `M#<binding id>`: a guardian of the relative, as co-guardians see
    /// them; written, checked or removed.
    Membership,
    /// `G#<guardian>` / `BAN#<relative key>`: an upheld dispute bars the guardian; put or
    /// checked.
    Ban,
    /// `G#<reporter>` / `D#<dispute id>`: the dispute.
    Dispute,
    /// `D#<dispute id>` / `DISPUTE`: whose dispute it is.
    DisputeLocator,
    /// `DISPUTES` / `D#<dispute id>`: the authority's queue entry, while open.
    DisputeQueue,
    /// `G#<reporter>` / `DG#<binding id>`: one open dispute per reporter and binding.
    DisputeGuard,
    /// `G#<reporter>` / `DQ#<China date>`: the day's disputes.
    DisputeQuota,
    /// An audit record.
    Audit,
    /// `R#<relative key>` / `AL#…`: an entry of the relative's access log.
    AccessLog,
    /// `R#<relative key>` / `ERASE`: the person's erasure, scheduled or under way; or an item
    /// an erasure removes.
    Erasure,
}

/// A transaction's items, each under its role, in the order they were built.
#[derive(Debug, Default)]
pub(super) struct Transaction {
    items: Vec<(Role, TransactWriteItem)>,
}

impl Transaction {
    pub(super) fn new() -> Self {
        Self::default()
    }

    pub(super) fn with(mut self, role: Role, item: TransactWriteItem) -> Self {
        self.push(role, item);
        self
    }

    pub(super) fn push(&mut self, role: Role, item: TransactWriteItem) {
        self.items.push((role, item));
    }
}

impl Extend<(Role, TransactWriteItem)> for Transaction {
    fn extend<I: IntoIterator<Item = (Role, TransactWriteItem)>>(&mut self, items: I) {
        self.items.extend(items);
    }
}

/// The order a transaction's items are sent in. DynamoDB applies them all or none, so the
/// order changes nothing but the order of the reasons of a refusal, which are read by role:
/// only tests choose another than `AsBuilt`, to show that.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ItemOrder {
    #[default]
    AsBuilt,
    /// Last item first.
    Reversed,
    /// Every item one place earlier, the first last: none where it was built (two or more).
    Rotated,
}

impl ItemOrder {
    fn arrange<T>(self, mut items: Vec<T>) -> Vec<T> {
        match self {
            Self::AsBuilt => {}
            Self::Reversed => items.reverse(),
            Self::Rotated if !items.is_empty() => items.rotate_left(1),
            Self::Rotated => {}
        }
        items
    }
}

/// A transaction DynamoDB did not apply, and why, item by item.
#[derive(Debug)]
pub(super) struct Refusal {
    operation: &'static str,
    /// Each item's role with its reason (`None`: the item was not refused), in the order
    /// sent; empty if DynamoDB gave no reasons (not a cancellation, or not one per item).
    reasons: Vec<(Role, Option<String>)>,
    err: TransactError,
}

impl Refusal {
    /// Pairs `err`'s reasons with the roles of the items as they were sent.
    fn new(operation: &'static str, sent: Vec<Role>, err: TransactError) -> Self {
        let codes = cancellation_codes(&err).unwrap_or_default();
        let reasons = if codes.len() == sent.len() {
            sent.into_iter().zip(codes).collect()
        } else {
            Vec::new()
        };
        Self {
            operation,
            reasons,
            err,
        }
    }

    /// Whether an item of `role` failed its condition.
    pub(super) fn refused(&self, role: Role) -> bool {
        self.reasons
            .iter()
            .any(|(r, code)| *r == role && code.as_deref() == Some("ConditionalCheckFailed"))
    }

    /// Whether any item failed its condition.
    pub(super) fn any_refused(&self) -> bool {
        self.reasons
            .iter()
            .any(|(_, code)| code.as_deref() == Some("ConditionalCheckFailed"))
    }

    /// Whether another transaction held one of the items (a race the client may retry).
    pub(super) fn raced(&self) -> bool {
        self.reasons
            .iter()
            .any(|(_, code)| code.as_deref() == Some("TransactionConflict"))
    }

    /// The refusal as an error, when no condition of the caller's explains it.
    pub(super) fn into_error(self) -> AppError {
        transaction_error(self.operation, self.err)
    }
}

/// Why each item of a cancelled transaction was refused (`None` for one that was not):
/// `ConditionalCheckFailed`, or `TransactionConflict` when another transaction held it.
fn cancellation_codes(err: &TransactError) -> Option<Vec<Option<String>>> {
    match err {
        SdkError::ServiceError(ctx) => match ctx.err() {
            TransactWriteItemsError::TransactionCanceledException(e) => Some(
                e.cancellation_reasons()
                    .iter()
                    .map(|r| r.code().filter(|c| *c != "None").map(str::to_owned))
                    .collect(),
            ),
            _ => None,
        },
        _ => None,
    }
}

/// A refused transaction that no condition of the caller's explains: another transaction
/// held one of its items (a race the client may retry: 409), DynamoDB throttled it (503),
/// or something worse.
fn transaction_error(operation: &'static str, err: TransactError) -> AppError {
    let codes = cancellation_codes(&err).unwrap_or_default();
    let any = |wanted: &[&str]| codes.iter().flatten().any(|c| wanted.contains(&c.as_str()));
    if any(&["TransactionConflict"]) {
        AppError::Conflict
    } else if any(&["ThrottlingError", "ProvisionedThroughputExceeded"]) {
        AppError::DependencyUnavailable(format!("{operation}: throttled"))
    } else {
        dynamodb_error(operation, err)
    }
}

impl Store {
    /// Sends `transaction` (its items in the store's `ItemOrder`); a refusal names the items
    /// that refused.
    pub(super) async fn transact(
        &self,
        operation: &'static str,
        transaction: Transaction,
    ) -> Result<(), Refusal> {
        let (sent, items): (Vec<Role>, Vec<TransactWriteItem>) = self
            .item_order
            .arrange(transaction.items)
            .into_iter()
            .unzip();
        self.client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await
            .map(|_| ())
            .map_err(|err| {
                tracing::debug!(operation, error = %DisplayErrorContext(&err), "transaction refused");
                Refusal::new(operation, sent, err)
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_dynamodb::types::error::TransactionCanceledException;
    use aws_sdk_dynamodb::types::CancellationReason;
    use aws_smithy_runtime_api::http::StatusCode;
    use aws_smithy_types::body::SdkBody;

    fn cancelled(reasons: &[&str]) -> TransactError {
        let mut exception = TransactionCanceledException::builder();
        for reason in reasons {
            exception =
                exception.cancellation_reasons(CancellationReason::builder().code(*reason).build());
        }
        SdkError::service_error(
            TransactWriteItemsError::TransactionCanceledException(exception.build()),
            aws_sdk_dynamodb::config::http::HttpResponse::new(
                StatusCode::try_from(400).unwrap(),
                SdkBody::empty(),
            ),
        )
    }

    const BIND: [Role; 6] = [
        Role::Binding,
        Role::PairGuard,
        Role::GuardianCount,
        Role::RelativeCount,
        Role::Audit,
        Role::AnchorCheck,
    ];

    /// What DynamoDB answers when the items of `refusing` fail their conditions, the items
    /// sent in `order`: one reason per item sent, in that order.
    fn refusal(order: ItemOrder, refusing: &[Role]) -> Refusal {
        let sent = order.arrange(BIND.to_vec());
        let reasons: Vec<&str> = sent
            .iter()
            .map(|role| match refusing.contains(role) {
                true => "ConditionalCheckFailed",
                false => "None",
            })
            .collect();
        Refusal::new("bind", sent, cancelled(&reasons))
    }

    #[test]
    fn a_refusal_names_the_items_that_refused_whatever_order_they_were_sent_in() {
        for order in [ItemOrder::AsBuilt, ItemOrder::Reversed, ItemOrder::Rotated] {
            for role in BIND {
                let refusal = refusal(order, &[role]);
                for other in BIND {
                    assert_eq!(refusal.refused(other), other == role, "{order:?} {role:?}");
                }
                assert!(refusal.any_refused() && !refusal.raced());
            }
            let two = refusal(order, &[Role::Binding, Role::AnchorCheck]);
            assert!(two.refused(Role::Binding) && two.refused(Role::AnchorCheck));
            assert!(!two.refused(Role::PairGuard));
            assert!(!refusal(order, &[]).any_refused());
        }
    }

    #[test]
    fn reordering_moves_every_item_of_a_transaction_of_two_or_more() {
        for order in [ItemOrder::Reversed, ItemOrder::Rotated] {
            for len in 2..8 {
                let built: Vec<usize> = (0..len).collect();
                let sent = order.arrange(built.clone());
                let mut sorted = sent.clone();
                sorted.sort_unstable();
                assert_eq!(sorted, built, "{order:?}: the same items");
                // Reversal keeps an odd transaction's middle item in place: the tests run
                // both orders.
                let kept = sent.iter().enumerate().filter(|(i, v)| i == *v).count();
                match order {
                    ItemOrder::Rotated => assert_eq!(kept, 0, "{order:?} {len}"),
                    _ => assert!(kept <= 1, "{order:?} {len}"),
                }
            }
        }
        assert_eq!(ItemOrder::AsBuilt.arrange(vec![1, 2, 3]), [1, 2, 3]);
    }

    #[test]
    fn a_refusal_without_one_reason_per_item_names_none() {
        let short = Refusal::new(
            "bind",
            BIND.to_vec(),
            cancelled(&["ConditionalCheckFailed"]),
        );
        assert!(!short.any_refused());
        let not_cancelled = Refusal::new(
            "bind",
            BIND.to_vec(),
            SdkError::timeout_error("slow (test)"),
        );
        assert!(!not_cancelled.any_refused());
        assert!(matches!(
            not_cancelled.into_error(),
            AppError::DependencyUnavailable(_)
        ));
    }

    #[test]
    fn a_transaction_refused_for_a_race_or_throttling_is_not_an_internal_error() {
        let raced = Refusal::new(
            "bind",
            vec![Role::Binding, Role::Audit],
            cancelled(&["None", "TransactionConflict"]),
        );
        assert!(raced.raced() && !raced.any_refused());
        let raced = raced.into_error();
        assert!(matches!(raced, AppError::Conflict), "{raced:?}");
        let throttled = transaction_error("bind", cancelled(&["ThrottlingError", "None"]));
        assert!(
            matches!(throttled, AppError::DependencyUnavailable(_)),
            "{throttled:?}"
        );
        let other = transaction_error("bind", cancelled(&["ValidationError"]));
        assert!(matches!(other, AppError::Internal(_)), "{other:?}");
    }
}
