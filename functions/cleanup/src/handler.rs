//! The scheduled cleanup (EventBridge Scheduler, input `{"job":"cleanup"}`): one bounded,
//! resumable pass over what has fallen due. Answers (and logs) the counts.

use chrono::{DateTime, Utc};
use kincode_common::adapters::blobs::BlobStore;
use kincode_common::store::{ActionContext, CleanupBudget};
use kincode_common::usecases::cleanup;
use kincode_common::wiring::services::Services;
use lambda_http::Error;
use serde::Deserialize;
use serde_json::Value;

/// A run stops well inside the function's timeout (template: 300 s); the next run resumes.
const DEFAULT_BUDGET: CleanupBudget = CleanupBudget {
    max_items: 20_000,
    max_duration: std::time::Duration::from_secs(240),
};

#[derive(Debug, Deserialize)]
struct Job {
    job: String,
    /// Smaller runs for operators and tests.
    max_items: Option<usize>,
}

pub async fn handle(
    services: &Services,
    blobs: &BlobStore,
    event: Value,
    request_id: String,
    now: DateTime<Utc>,
) -> Result<Value, Error> {
    let job: Job = serde_json::from_value(event).map_err(|e| format!("not a cleanup job: {e}"))?;
    if job.job != "cleanup" {
        return Err(format!("unknown job `{}`", job.job).into());
    }
    let budget = CleanupBudget {
        max_items: job.max_items.unwrap_or(DEFAULT_BUDGET.max_items),
        ..DEFAULT_BUDGET
    };
    let ctx = ActionContext {
        request_id: &request_id,
        at: now,
    };
    let report = cleanup::run(&services.store, blobs, budget, ctx).await?;
    Ok(serde_json::to_value(report)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kincode_tests::*;

    #[tokio::test]
    async fn the_scheduled_event_runs_a_cleanup_and_answers_its_counts() {
        let services = fresh_services().await;
        let blobs = fresh_bucket(&services).await;
        let answer = handle(
            &services,
            &blobs,
            event("cleanup.json"),
            "req-1".into(),
            Utc::now(),
        )
        .await
        .expect("cleanup runs");
        assert_eq!(answer["complete"], true);
        assert_eq!(answer["pending_bindings_released"], 0);
        assert!(answer["days_walked"].as_u64().unwrap() >= 9);
    }

    #[tokio::test]
    async fn the_answer_counts_the_guardians_told_and_the_bindings_ended_at_seventeen() {
        let services = fresh_services().await;
        let blobs = fresh_bucket(&services).await;
        // Born 1 December 2009, bound three days before turning 17 (midnight China time).
        let bound_at: DateTime<Utc> = "2026-11-27T02:00:00Z".parse().unwrap();
        let birth = chrono::NaiveDate::from_ymd_opt(2009, 12, 1).unwrap();
        active_relative_with(&services, "user-17", &resident_id_born(birth, 5), bound_at).await;
        let answer = handle(
            &services,
            &blobs,
            event("cleanup.json"),
            "req-4".into(),
            "2026-11-30T16:07:00Z".parse().unwrap(),
        )
        .await
        .expect("cleanup runs");
        assert_eq!(
            (
                &answer["age_notices_recorded"],
                &answer["bindings_aged_out"]
            ),
            (&serde_json::json!(1), &serde_json::json!(1)),
            "{answer}"
        );
        assert_eq!(counter(&services, "G#user-17", "bound").await, 0);
    }

    #[tokio::test]
    async fn another_job_or_an_outage_is_an_error_the_scheduler_retries() {
        let services = fresh_services().await;
        let blobs = fresh_bucket(&services).await;
        let other = serde_json::json!({ "job": "reindex" });
        assert!(handle(&services, &blobs, other, "req-2".into(), Utc::now())
            .await
            .is_err());
        let down = unreachable_services().await;
        assert!(handle(
            &down,
            &blobs,
            event("cleanup.json"),
            "req-3".into(),
            Utc::now()
        )
        .await
        .is_err());
    }
}
