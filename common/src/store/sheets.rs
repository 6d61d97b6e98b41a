//! Household sheets: which cards one request put on A4 and where its files are, kept until the
//! cards expire so a retried request answers the same sheet and the cleanup finds the files.
//! The cards themselves are ordinary offline cards (`codes`): their quota, records, revocation
//! and cleanup are those of every card.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use super::transaction::{Role, Transaction};
use super::{Due, Store};
use crate::domain::code::SheetLeftOutReason;
use crate::domain::colour::HealthColour;
use crate::error::AppError;

pub(super) const SHEET_PK_PREFIX: &str = "HS#";
pub(super) const SHEET_SK: &str = "SHEET";

pub(super) fn sheet_pk(sheet_id: &str) -> String {
    format!("{SHEET_PK_PREFIX}{sheet_id}")
}

/// DynamoDB's TTL runs a day behind the cleanup: a backstop, never the rule.
fn ttl_slack() -> Duration {
    Duration::days(1)
}

/// A card on a sheet: its binding, serial and colour. No personal data: the answer names the
/// people from the caller's bindings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SheetCardEntry {
    pub binding_id: String,
    pub serial: String,
    pub colour: HealthColour,
    pub generated_at: DateTime<Utc>,
    pub valid_until: DateTime<Utc>,
}

/// A relative left off a sheet, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SheetLeftOutEntry {
    pub binding_id: String,
    pub reason: SheetLeftOutReason,
}

/// What a household sheet holds and where its files are.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HouseholdSheetRecord {
    pub sheet_id: String,
    pub guardian: String,
    pub pdf_key: String,
    pub preview_key: String,
    pub pages: u32,
    pub generated_at: DateTime<Utc>,
    /// The last of its cards' expiry: the files go then.
    pub valid_until: DateTime<Utc>,
    pub cards: Vec<SheetCardEntry>,
    pub left_out: Vec<SheetLeftOutEntry>,
}

impl HouseholdSheetRecord {
    pub fn objects(&self) -> [&str; 2] {
        [&self.pdf_key, &self.preview_key]
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct SheetItem {
    pk: String,
    sk: String,
    #[serde(flatten)]
    sheet: HouseholdSheetRecord,
    expires_at: i64,
    #[serde(flatten)]
    due: Due,
}

/// Whose sheet a sheet id holds once the write is over.
#[derive(Debug)]
pub enum SheetRecorded {
    /// This request's.
    Ours,
    /// Another request's with the same id (the same caller and Idempotency-Key) got there
    /// first: answer that one.
    Theirs(HouseholdSheetRecord),
}

impl Store {
    /// Marks one of a sheet's files as in flight, before it is put.
    pub async fn mark_sheet_object_in_flight(
        &self,
        sheet_id: &str,
        object_key: &str,
        now: DateTime<Utc>,
    ) -> Result<(), AppError> {
        self.mark_in_flight(sheet_pk(sheet_id), object_key, now)
            .await
    }

    /// Forgets a file in flight of a sheet that was not recorded, once the file is gone.
    pub async fn forget_sheet_object_in_flight(
        &self,
        sheet_id: &str,
        object_key: &str,
    ) -> Result<(), AppError> {
        self.forget_in_flight(sheet_pk(sheet_id), object_key).await
    }

    /// The sheet of `sheet_id`, if recorded (read consistently).
    pub async fn household_sheet(
        &self,
        sheet_id: &str,
    ) -> Result<Option<HouseholdSheetRecord>, AppError> {
        self.due_household_sheet(&sheet_pk(sheet_id), SHEET_SK)
            .await
    }

    /// The sheet record behind a key, if still there.
    pub async fn due_household_sheet(
        &self,
        pk: &str,
        sk: &str,
    ) -> Result<Option<HouseholdSheetRecord>, AppError> {
        self.get(pk.into(), sk.into(), "get household sheet")
            .await?
            .map(|item| {
                serde_dynamo::from_item::<_, SheetItem>(item)
                    .map(|i| i.sheet)
                    .map_err(|e| AppError::Internal(format!("decode household sheet: {e}")))
            })
            .transpose()
    }

    /// Records a sheet whose files are stored, and clears their in-flight marks, in one
    /// transaction. The record is only written if its id is new: with an Idempotency-Key two
    /// requests may race for one id, and the first to record wins.
    ///
    /// When the write is refused or its outcome is unknown, the record is read back: this
    /// request's (an attempt landed whose answer was lost), another's (answer that one), or
    /// none (the failure stands: 503, the marks left for the cleanup).
    pub async fn record_household_sheet(
        &self,
        sheet: &HouseholdSheetRecord,
    ) -> Result<SheetRecorded, AppError> {
        let pk = sheet_pk(&sheet.sheet_id);
        let item = SheetItem {
            due: Due::of(&pk, SHEET_SK, sheet.valid_until),
            pk: pk.clone(),
            sk: SHEET_SK.into(),
            sheet: sheet.clone(),
            expires_at: (sheet.valid_until + ttl_slack()).timestamp(),
        };
        let mut transaction = Transaction::new().with(Role::HouseholdSheet, self.put_new(&item)?);
        for object in sheet.objects() {
            transaction.push(
                Role::ImageInFlight,
                self.in_flight_cleared(pk.clone(), object)?,
            );
        }
        let refusal = match self.transact("household sheet", transaction).await {
            Ok(()) => return Ok(SheetRecorded::Ours),
            Err(refusal) => refusal,
        };
        match self.household_sheet(&sheet.sheet_id).await? {
            Some(recorded) if recorded.pdf_key == sheet.pdf_key => {
                tracing::info!("household sheet found recorded after a failed answer");
                Ok(SheetRecorded::Ours)
            }
            Some(recorded) => Ok(SheetRecorded::Theirs(recorded)),
            None => Err(refusal.into_error()),
        }
    }
}
