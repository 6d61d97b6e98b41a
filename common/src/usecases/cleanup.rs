//! The scheduled cleanup: removes what has fallen due — offline cards (image, then record),
//! household sheets (PDF and preview, then record), images and files whose record never
//! came (object, then mark),
//! revocations and revoked anchors past the codes they concern, audit records past retention,
//! daily quotas, and bindings never verified in time (releasing both counters in the same
//! transaction); and acts on children's age transitions: tells the guardian that face
//! verification is due at 7 or that the binding ends at 17, and ends it then, as an unbind
//! does. Bounded per run, resumable from a cursor, and idempotent: what is gone is simply not
//! found again.

use chrono::{DateTime, Duration, DurationRound, Utc};

use crate::adapters::blobs::BlobStore;
use crate::domain::expiry_buckets_of_day;
use crate::domain::policy::AgeTransition;
use crate::error::AppError;
use crate::store::{
    ActionContext, AuditAction, CleanupBudget, CleanupReport, DueItem, DueTransition, Store,
};
use crate::usecases::bindings;
use crate::usecases::erasure::{self, Erasure};

/// Where the very first run starts: the longest-lived item that only the cleanup removes
/// (an offline card, 7 days) plus a day. Older leftovers are DynamoDB TTL's and S3
/// lifecycle's to remove.
pub fn first_run_lookback() -> Duration {
    Duration::days(8)
}

/// A past day is finished only once writers' clocks are surely past it.
fn settle_time() -> Duration {
    Duration::minutes(5)
}

const PAGE_SIZE: usize = 100;

fn day_of(t: DateTime<Utc>) -> DateTime<Utc> {
    t.duration_trunc(Duration::days(1)).expect("day truncation")
}

pub async fn run(
    store: &Store,
    blobs: &BlobStore,
    budget: CleanupBudget,
    ctx: ActionContext<'_>,
) -> Result<CleanupReport, AppError> {
    let now = ctx.at;
    let started = std::time::Instant::now();
    let cursor = store.cleanup_cursor().await?;
    let mut next_cursor = cursor.unwrap_or_else(|| day_of(now - first_run_lookback()));
    let mut report = CleanupReport {
        complete: true,
        ..CleanupReport::default()
    };
    let mut handled = 0usize;
    let mut day = next_cursor;
    'days: while day <= day_of(now) {
        for bucket in expiry_buckets_of_day(day.date_naive()) {
            let mut start = None;
            loop {
                if handled >= budget.max_items || started.elapsed() >= budget.max_duration {
                    report.complete = false;
                    break 'days;
                }
                let limit = PAGE_SIZE.min(budget.max_items - handled);
                let page = store.due_page(&bucket, now, start, limit as i32).await?;
                for item in page.items {
                    handle(store, blobs, item, &mut report, ctx).await?;
                    handled += 1;
                }
                start = page.next;
                if start.is_none() {
                    break;
                }
            }
        }
        report.days_walked += 1;
        day += Duration::days(1);
        if day <= now - settle_time() {
            next_cursor = day;
        }
    }
    if cursor != Some(next_cursor) {
        store.set_cleanup_cursor(next_cursor).await?;
    }
    tracing::info!(
        days_walked = report.days_walked,
        pending_bindings_released = report.pending_bindings_released,
        age_notices_recorded = report.age_notices_recorded,
        bindings_aged_out = report.bindings_aged_out,
        offline_cards_deleted = report.offline_cards_deleted,
        orphan_images_deleted = report.orphan_images_deleted,
        household_sheets_deleted = report.household_sheets_deleted,
        items_deleted = report.items_deleted,
        skipped = report.skipped,
        complete = report.complete,
        "cleanup"
    );
    Ok(report)
}

async fn handle(
    store: &Store,
    blobs: &BlobStore,
    item: DueItem,
    report: &mut CleanupReport,
    ctx: ActionContext<'_>,
) -> Result<(), AppError> {
    let done = match &item {
        DueItem::PendingBinding { pk, sk } => {
            let released = store.expire_pending(pk, sk, ctx).await?;
            report.pending_bindings_released += u32::from(released);
            released
        }
        DueItem::AgeTransition { pk, sk } => match store.due_age_transition(pk, sk).await? {
            Some(due) => age_transition(store, &due, report, ctx).await?,
            None => false,
        },
        DueItem::OfflineCard { pk, sk } => match store.due_offline_card(pk, sk).await? {
            Some(card) => {
                // The image first: a record without an image is harmless, the reverse is not
                // findable any more.
                blobs.delete(&card.object_key).await?;
                let deleted = store.delete_due(pk, sk, ctx.at).await?;
                report.offline_cards_deleted += u32::from(deleted);
                deleted
            }
            None => false,
        },
        DueItem::ImageInFlight { pk, sk } => match store.image_in_flight(pk, sk).await? {
            Some(object_key) => {
                blobs.delete(&object_key).await?;
                let deleted = store.delete_due(pk, sk, ctx.at).await?;
                report.orphan_images_deleted += u32::from(deleted);
                deleted
            }
            None => false,
        },
        DueItem::Erasure { relative_key } => {
            match erasure::erase(store, relative_key, ctx).await? {
                Erasure::Erased { .. } => {
                    report.people_erased += 1;
                    true
                }
                Erasure::Held | Erasure::Gone => false,
            }
        }
        DueItem::HouseholdSheet { pk, sk } => match store.due_household_sheet(pk, sk).await? {
            Some(sheet) => {
                for object in sheet.objects() {
                    blobs.delete(object).await?;
                }
                let deleted = store.delete_due(pk, sk, ctx.at).await?;
                report.household_sheets_deleted += u32::from(deleted);
                deleted
            }
            None => false,
        },
        DueItem::Plain { pk, sk } => {
            let deleted = store.delete_due(pk, sk, ctx.at).await?;
            report.items_deleted += u32::from(deleted);
            deleted
        }
    };
    report.skipped += u32::from(!done);
    Ok(())
}

/// Acts on a child's age transition: a notice is an audit record the guardian reads (the
/// access log); the end at 17 ends the binding as an unbind would. `false` if another run did
/// it, or a write made it moot (face verified, the binding removed).
async fn age_transition(
    store: &Store,
    due: &DueTransition,
    report: &mut CleanupReport,
    ctx: ActionContext<'_>,
) -> Result<bool, AppError> {
    let notice = match due.transition {
        AgeTransition::FaceDue => AuditAction::FaceVerificationDue,
        AgeTransition::EndingNotice => AuditAction::EndingNotice,
        AgeTransition::End => {
            let ended = bindings::end_at_age_limit(store, &due.guardian, &due.binding, ctx).await?;
            report.bindings_aged_out += u32::from(ended);
            return Ok(ended);
        }
    };
    let recorded = store.record_age_notice(due, notice, ctx).await?;
    report.age_notices_recorded += u32::from(recorded);
    Ok(recorded)
}
