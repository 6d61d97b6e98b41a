//! Face recognition: the port the verify use cases call, the production adapter (Alipay's
//! identity certification, `alipay.rs`) and the local simulator that stands in for it.

pub mod alipay;
pub mod rsa2;

use std::future::Future;

use serde_json::Value;
use zeroize::Zeroizing;

use crate::domain::binding::BindingId;
use crate::error::AppError;

pub use alipay::AlipayCertify;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaceOutcome {
    Passed,
    Failed,
    /// The person has not finished the scan yet: nothing is counted.
    NotFinished,
}

/// The relative's name and ID number, opened from their sealed fields for one call to the
/// provider: never logged (no `Debug` of the values), wiped when dropped.
pub struct RelativeIdentity {
    name: Zeroizing<String>,
    id_number: Zeroizing<String>,
}

impl RelativeIdentity {
    pub fn new(name: Zeroizing<String>, id_number: Zeroizing<String>) -> Self {
        Self { name, id_number }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn id_number(&self) -> &str {
        &self.id_number
    }
}

impl std::fmt::Debug for RelativeIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RelativeIdentity(<redacted>)")
    }
}

/// A certification session: the provider's id for it and the page the client opens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FaceSession {
    pub certify_id: String,
    pub certify_url: Option<String>,
}

/// A face recognition provider: `start` opens a certification session for the person (the
/// attempt named by `attempt`, unique and traceable to the binding); `outcome` asks the
/// provider how it ended. `evidence` is what the client SDK handed back, passed through.
pub trait FaceVerifier: Send + Sync {
    fn start(
        &self,
        binding: &BindingId,
        attempt: &str,
        identity: &RelativeIdentity,
    ) -> impl Future<Output = Result<FaceSession, AppError>> + Send;
    fn outcome(
        &self,
        certify_id: &str,
        evidence: &Value,
    ) -> impl Future<Output = Result<FaceOutcome, AppError>> + Send;
}

/// **Local simulator**, for laptops and tests only (production config refuses it): a session
/// passes when the client's evidence says `{"simulated_outcome": "pass"}`, is unfinished
/// with `"not_finished"`, and fails otherwise.
#[derive(Debug, Default, Clone, Copy)]
pub struct LocalFaceSimulator;

pub const SIMULATED_CERTIFY_PREFIX: &str = "local-sim-";

impl FaceVerifier for LocalFaceSimulator {
    async fn start(
        &self,
        _binding: &BindingId,
        _attempt: &str,
        _identity: &RelativeIdentity,
    ) -> Result<FaceSession, AppError> {
        Ok(FaceSession {
            certify_id: format!(
                "{SIMULATED_CERTIFY_PREFIX}{}",
                uuid::Uuid::new_v4().simple()
            ),
            certify_url: None,
        })
    }

    async fn outcome(&self, certify_id: &str, evidence: &Value) -> Result<FaceOutcome, AppError> {
        if !certify_id.starts_with(SIMULATED_CERTIFY_PREFIX) {
            return Ok(FaceOutcome::Failed);
        }
        Ok(
            match evidence.get("simulated_outcome").and_then(Value::as_str) {
                Some("pass") => FaceOutcome::Passed,
                Some("not_finished") => FaceOutcome::NotFinished,
                _ => FaceOutcome::Failed,
            },
        )
    }
}

/// The provider the configuration names, as the verify function holds it.
pub enum ConfiguredFace {
    Simulator(LocalFaceSimulator),
    Alipay(Box<AlipayCertify>),
}

impl FaceVerifier for ConfiguredFace {
    async fn start(
        &self,
        binding: &BindingId,
        attempt: &str,
        identity: &RelativeIdentity,
    ) -> Result<FaceSession, AppError> {
        match self {
            Self::Simulator(face) => face.start(binding, attempt, identity).await,
            Self::Alipay(face) => face.start(binding, attempt, identity).await,
        }
    }

    async fn outcome(&self, certify_id: &str, evidence: &Value) -> Result<FaceOutcome, AppError> {
        match self {
            Self::Simulator(face) => face.outcome(certify_id, evidence).await,
            Self::Alipay(face) => face.outcome(certify_id, evidence).await,
        }
    }
}
