//! Everything the colour depends on, in one query of the person's partition (`H#`): the
//! authority's risk flags and the person's tests within retention.

use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::flags::FlagItem;
use super::nucleic::TestItem;
use super::{relative_pk, SortKeyOrder, Store};
use crate::domain::health::HealthSignals;
use crate::domain::nucleic::TestSignal;
use crate::error::AppError;

const HEALTH_PREFIX: &str = "H#";

/// The items under `H#`: told apart by their fields (a flag has a window, a test a tube).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum HealthItem {
    Flag(FlagItem),
    Test(TestItem),
}

impl Store {
    pub async fn health_signals(
        &self,
        relative_key: &str,
        now: DateTime<Utc>,
    ) -> Result<HealthSignals, AppError> {
        let items: Vec<HealthItem> = self
            .query_prefix(
                relative_pk(relative_key),
                HEALTH_PREFIX,
                SortKeyOrder::Ascending,
                "read health signals",
            )
            .await?;
        let retained_since = self.retained_since(now);
        let mut signals = HealthSignals::default();
        for item in items {
            match item {
                HealthItem::Flag(flag) => signals.flags.push(flag.signal),
                HealthItem::Test(test) if test.sampled_at > retained_since => {
                    signals.tests.push(TestSignal {
                        sampled_at: test.sampled_at,
                        kind: test.kind,
                        status: test.status,
                    })
                }
                HealthItem::Test(_) => {}
            }
        }
        Ok(signals)
    }
}
