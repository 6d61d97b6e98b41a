//! DynamoDB capacity, metered: what each operation consumes in read and write units, by
//! DynamoDB's published rules applied to the exact requests it sends and the exact items it
//! reads and writes.
//!
//! The local stack cannot report this: moto answers `ReturnConsumedCapacity` with fixed
//! figures (1.0 or 0.5 whatever the item, nothing for transactions). So an SDK interceptor
//! records every call's request and answer, the table is read before and after the operation,
//! and the units follow from AWS's rules (developer guide, "DynamoDB read and write
//! operations", "Global secondary indexes", "Estimating item size"):
//! - reads round up to 4 KB: strongly consistent 1 unit, eventually consistent 0.5; a `Query`
//!   sums the sizes of the items it reads (before any filter) and rounds once; a read that
//!   finds nothing still costs the minimum; an index read is sized by its index entries;
//! - writes round up to 1 KB of the larger of the item before and after; a transaction's
//!   items cost twice (prepare and commit);
//! - an index entry added or removed is one index write, a changed index key two (delete and
//!   put). KEYS_ONLY entries are well under 1 KB.
//!
//! Two figures AWS does not document are taken on the safe side and named: a transaction's
//! `ConditionCheck` costs as a transactional write of the item it checks (as measured and
//! published by others), and a transaction's index writes are doubled like its items.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use aws_sdk_dynamodb::config::interceptors::{
    BeforeSerializationInterceptorContextRef, FinalizerInterceptorContextRef,
};
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_dynamodb::error::BoxError;
use aws_sdk_dynamodb::operation::delete_item::DeleteItemInput;
use aws_sdk_dynamodb::operation::get_item::{GetItemInput, GetItemOutput};
use aws_sdk_dynamodb::operation::put_item::PutItemInput;
use aws_sdk_dynamodb::operation::query::{QueryInput, QueryOutput};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsInput;
use aws_sdk_dynamodb::operation::update_item::UpdateItemInput;
use aws_sdk_dynamodb::types::AttributeValue;
use kincode_common::wiring::services::Services;
use serde::{Deserialize, Serialize};

type Item = HashMap<String, AttributeValue>;
type Key = (String, String);

/// The attributes of a `by_expiry` index entry (KEYS_ONLY: the table's keys and its own).
const INDEX_ATTRIBUTES: [&str; 4] = ["pk", "sk", "expiry_bucket", "due_at"];

/// What one operation consumed. Units are read (RCU/RRU) and write (WCU/WRU) units, the same
/// figures on-demand bills as request units.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Consumed {
    /// The DynamoDB calls, in order.
    pub calls: Vec<String>,
    pub table_read_units: f64,
    pub table_write_units: f64,
    pub index_read_units: f64,
    pub index_write_units: f64,
}

/// Item size by DynamoDB's rules: attribute names plus values.
pub fn item_size(item: &Item) -> usize {
    item.iter()
        .map(|(name, value)| name.len() + value_size(value))
        .sum()
}

fn value_size(value: &AttributeValue) -> usize {
    match value {
        AttributeValue::S(s) => s.len(),
        AttributeValue::N(n) => number_size(n),
        AttributeValue::B(b) => b.as_ref().len(),
        AttributeValue::Bool(_) | AttributeValue::Null(_) => 1,
        AttributeValue::Ss(v) => v.iter().map(String::len).sum(),
        AttributeValue::Ns(v) => v.iter().map(|n| number_size(n)).sum(),
        AttributeValue::Bs(v) => v.iter().map(|b| b.as_ref().len()).sum(),
        AttributeValue::L(v) => 3 + v.iter().map(|e| 1 + value_size(e)).sum::<usize>(),
        AttributeValue::M(m) => {
            3 + m
                .iter()
                .map(|(k, e)| 1 + k.len() + value_size(e))
                .sum::<usize>()
        }
        _ => 0,
    }
}

/// One byte per two significant digits, plus one.
fn number_size(n: &str) -> usize {
    let digits: String = n.chars().filter(char::is_ascii_digit).collect();
    let significant = digits.trim_start_matches('0').trim_end_matches('0').len();
    significant.div_ceil(2) + 1
}

/// How far `bytes` is from a rounding edge that would change its units (only upward within
/// the first unit, which is the minimum anyway).
fn margin(bytes: usize, unit: usize) -> usize {
    let above = unit - bytes % unit;
    if bytes < unit {
        above
    } else {
        above.min(bytes % unit)
    }
}

fn read_units(bytes: usize, consistent: bool) -> f64 {
    let units = bytes.max(1).div_ceil(4096) as f64;
    if consistent {
        units
    } else {
        units / 2.0
    }
}

fn write_units(bytes: usize) -> f64 {
    bytes.max(1).div_ceil(1024) as f64
}

fn text(item: &Item, name: &str) -> String {
    item.get(name)
        .and_then(|v| v.as_s().ok())
        .cloned()
        .unwrap_or_default()
}

fn key_of(item: &Item) -> Key {
    (text(item, "pk"), text(item, "sk"))
}

fn index_entry(item: &Item) -> Option<Item> {
    item.contains_key("expiry_bucket").then(|| {
        INDEX_ATTRIBUTES
            .iter()
            .filter_map(|a| Some((a.to_string(), item.get(*a)?.clone())))
            .collect()
    })
}

#[derive(Debug, Clone)]
enum Call {
    Get {
        consistent: bool,
        found: Option<Item>,
    },
    Query {
        input: Box<QueryInput>,
        read: Vec<Item>,
        filtered_out: bool,
    },
    Write {
        transactional: bool,
        key: Key,
        put: Option<Item>,
    },
    ConditionCheck {
        key: Key,
    },
}

/// The interceptor: records each call's request, then its answer.
#[derive(Debug, Clone, Default)]
pub struct CapacityMeter {
    names: Arc<Mutex<Vec<String>>>,
    calls: Arc<Mutex<Vec<Call>>>,
    in_flight: Arc<Mutex<Option<Call>>>,
}

impl Intercept for CapacityMeter {
    fn name(&self) -> &'static str {
        "CapacityMeter"
    }

    fn read_before_serialization(
        &self,
        context: &BeforeSerializationInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Some(meta) = cfg.load::<aws_smithy_runtime_api::client::orchestrator::Metadata>() {
            self.names
                .lock()
                .expect("lock")
                .push(meta.name().to_owned());
        }
        let input = context.input();
        let key = |k: Option<&Item>| k.map(key_of).unwrap_or_default();
        let mut recorded = Vec::new();
        let mut in_flight = None;
        if let Some(get) = input.downcast_ref::<GetItemInput>() {
            in_flight = Some(Call::Get {
                consistent: get.consistent_read() == Some(true),
                found: None,
            });
        } else if let Some(query) = input.downcast_ref::<QueryInput>() {
            in_flight = Some(Call::Query {
                input: Box::new(query.clone()),
                read: Vec::new(),
                filtered_out: false,
            });
        } else if let Some(put) = input.downcast_ref::<PutItemInput>() {
            recorded.push(Call::Write {
                transactional: false,
                key: key(put.item()),
                put: put.item().cloned(),
            });
        } else if let Some(update) = input.downcast_ref::<UpdateItemInput>() {
            recorded.push(Call::Write {
                transactional: false,
                key: key(update.key()),
                put: None,
            });
        } else if let Some(delete) = input.downcast_ref::<DeleteItemInput>() {
            recorded.push(Call::Write {
                transactional: false,
                key: key(delete.key()),
                put: None,
            });
        } else if let Some(transaction) = input.downcast_ref::<TransactWriteItemsInput>() {
            for item in transaction.transact_items() {
                recorded.push(if let Some(put) = item.put() {
                    Call::Write {
                        transactional: true,
                        key: key_of(put.item()),
                        put: Some(put.item().clone()),
                    }
                } else if let Some(update) = item.update() {
                    Call::Write {
                        transactional: true,
                        key: key_of(update.key()),
                        put: None,
                    }
                } else if let Some(delete) = item.delete() {
                    Call::Write {
                        transactional: true,
                        key: key_of(delete.key()),
                        put: None,
                    }
                } else {
                    let check = item.condition_check().expect("a transaction item");
                    Call::ConditionCheck {
                        key: key_of(check.key()),
                    }
                });
            }
        } else {
            return Err(format!("the capacity meter does not know {input:?}").into());
        }
        self.calls.lock().expect("lock").extend(recorded);
        *self.in_flight.lock().expect("lock") = in_flight;
        Ok(())
    }

    fn read_after_execution(
        &self,
        context: &FinalizerInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let Some(mut call) = self.in_flight.lock().expect("lock").take() else {
            return Ok(());
        };
        let Some(Ok(output)) = context.output_or_error() else {
            // A read that failed consumed nothing we count; the operation fails anyway.
            return Ok(());
        };
        match &mut call {
            Call::Get { found, .. } => {
                *found = output
                    .downcast_ref::<GetItemOutput>()
                    .and_then(|o| o.item().cloned());
            }
            Call::Query {
                read, filtered_out, ..
            } => {
                let out = output
                    .downcast_ref::<QueryOutput>()
                    .expect("a query answer");
                read.extend(out.items().iter().cloned());
                *filtered_out = out.scanned_count() != out.count();
            }
            _ => {}
        }
        self.calls.lock().expect("lock").push(call);
        Ok(())
    }
}

/// Services whose DynamoDB calls are metered, and what reads the table around them.
pub struct Metered {
    pub services: Services,
    meter: CapacityMeter,
    raw: aws_sdk_dynamodb::Client,
    before: Mutex<HashMap<Key, Item>>,
    narrowest_margin: Mutex<usize>,
}

impl Metered {
    /// Fresh services (a table of their own) with the meter on their client.
    pub async fn new() -> Self {
        let meter = CapacityMeter::default();
        let services = kincode_tests::intercepted_services(meter.clone()).await;
        let raw = kincode_tests::raw_client(&services).await;
        Self {
            services,
            meter,
            raw,
            before: Mutex::default(),
            narrowest_margin: Mutex::new(usize::MAX),
        }
    }

    async fn table(&self) -> HashMap<Key, Item> {
        kincode_tests::all_items(&self.services)
            .await
            .into_iter()
            .map(|item| (key_of(&item), item))
            .collect()
    }

    /// Starts a measurement: the table as it is, and no calls yet.
    pub async fn start(&self) {
        *self.before.lock().expect("lock") = self.table().await;
        self.meter.names.lock().expect("lock").clear();
        self.meter.calls.lock().expect("lock").clear();
    }

    /// What the calls since `start` consumed.
    pub async fn finish(&self) -> Consumed {
        let after = self.table().await;
        let before = std::mem::take(&mut *self.before.lock().expect("lock"));
        let calls = std::mem::take(&mut *self.meter.calls.lock().expect("lock"));
        let mut consumed = Consumed {
            calls: std::mem::take(&mut *self.meter.names.lock().expect("lock")),
            ..Consumed::default()
        };
        let size_in = |table: &HashMap<Key, Item>, key: &Key| table.get(key).map(item_size);
        for call in calls {
            match call {
                Call::Get { consistent, found } => {
                    let bytes = found.as_ref().map_or(0, item_size);
                    self.near_edge(bytes, 4096);
                    consumed.table_read_units += read_units(bytes, consistent);
                }
                Call::Query {
                    input,
                    read,
                    filtered_out,
                } => {
                    // A filter drops items after they are read (and paid for): read them
                    // again without it.
                    let read = if filtered_out {
                        self.unfiltered(*input.clone()).await
                    } else {
                        read
                    };
                    if input.index_name().is_some() {
                        let bytes = read
                            .iter()
                            .filter_map(index_entry)
                            .map(|e| item_size(&e))
                            .sum();
                        self.near_edge(bytes, 4096);
                        consumed.index_read_units += read_units(bytes, false);
                    } else {
                        let bytes = read.iter().map(item_size).sum();
                        self.near_edge(bytes, 4096);
                        consumed.table_read_units +=
                            read_units(bytes, input.consistent_read() == Some(true));
                    }
                }
                Call::Write {
                    transactional,
                    key,
                    put,
                } => {
                    let old = before.get(&key);
                    let now = after.get(&key).or(put.as_ref());
                    let bytes = size_in(&before, &key)
                        .unwrap_or(0)
                        .max(now.map_or(0, item_size));
                    self.near_edge(bytes, 1024);
                    let factor = if transactional { 2.0 } else { 1.0 };
                    consumed.table_write_units += factor * write_units(bytes);
                    let entries = (old.and_then(index_entry), now.and_then(index_entry));
                    let index_writes = match entries {
                        (None, None) => 0.0,
                        (Some(_), None) | (None, Some(_)) => 1.0,
                        (Some(old), Some(new)) => {
                            if old == new {
                                0.0
                            } else {
                                2.0
                            }
                        }
                    };
                    consumed.index_write_units += factor * index_writes;
                }
                Call::ConditionCheck { key } => {
                    let bytes = size_in(&before, &key).unwrap_or(0);
                    self.near_edge(bytes, 1024);
                    consumed.table_write_units += 2.0 * write_units(bytes);
                }
            }
        }
        *self.before.lock().expect("lock") = after;
        consumed
    }

    fn near_edge(&self, bytes: usize, unit: usize) {
        let mut narrowest = self.narrowest_margin.lock().expect("lock");
        *narrowest = (*narrowest).min(margin(bytes, unit));
    }

    /// The fewest bytes any measured size was from changing its units: a figure on the edge
    /// would change with a timestamp's digits, so the documented figures must not be.
    pub fn narrowest_margin(&self) -> usize {
        *self.narrowest_margin.lock().expect("lock")
    }

    async fn unfiltered(&self, mut input: QueryInput) -> Vec<Item> {
        input.filter_expression = None;
        if let Some(values) = input.expression_attribute_values.as_mut() {
            let used = format!(
                "{} {}",
                input.key_condition_expression.clone().unwrap_or_default(),
                input.projection_expression.clone().unwrap_or_default()
            );
            values.retain(|name, _| used.contains(name.as_str()));
        }
        if let Some(names) = input.expression_attribute_names.as_mut() {
            let used = input.key_condition_expression.clone().unwrap_or_default();
            names.retain(|name, _| used.contains(name.as_str()));
            if names.is_empty() {
                input.expression_attribute_names = None;
            }
        }
        self.raw
            .query()
            .set_table_name(input.table_name)
            .set_index_name(input.index_name)
            .set_key_condition_expression(input.key_condition_expression)
            .set_expression_attribute_names(input.expression_attribute_names)
            .set_expression_attribute_values(input.expression_attribute_values)
            .set_exclusive_start_key(input.exclusive_start_key)
            .set_limit(input.limit)
            .set_scan_index_forward(input.scan_index_forward)
            .set_consistent_read(input.consistent_read)
            .send()
            .await
            .expect("the query again, unfiltered")
            .items
            .unwrap_or_default()
    }
}

/// The documented figures: `docs/capacity-units.json`, by operation.
pub type CapacityTable = BTreeMap<String, Consumed>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_follow_dynamodbs_rules() {
        assert_eq!(number_size("0"), 1);
        assert_eq!(number_size("1764324000"), 4 + 1); // 1764324: 7 significant digits
        assert_eq!(number_size("-12.50"), 1 + 2);
        let item: Item = HashMap::from([
            ("pk".to_owned(), AttributeValue::S("R#ab".into())),
            ("n".to_owned(), AttributeValue::N("123".into())),
            ("ok".to_owned(), AttributeValue::Bool(true)),
            (
                "l".to_owned(),
                AttributeValue::L(vec![AttributeValue::S("中".into())]),
            ),
        ]);
        // 2+4, 1+3, 2+1, 1+(3+1+3)
        assert_eq!(item_size(&item), 6 + 4 + 3 + 8);
        assert_eq!(read_units(0, false), 0.5);
        assert_eq!(read_units(4097, true), 2.0);
        assert_eq!(write_units(1024), 1.0);
        assert_eq!(write_units(1025), 2.0);
        assert_eq!(margin(1000, 1024), 24);
        assert_eq!(margin(1030, 1024), 6);
        assert_eq!(margin(2040, 1024), 8);
    }
}
