//! Face recognition port, and the local simulator that stands in for the real provider.

use std::future::Future;

use serde_json::Value;

use crate::domain::binding::BindingId;
use crate::error::AppError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaceOutcome {
    Passed,
    Failed,
}

/// A face recognition provider: `start` opens a certification session the client app then
/// runs; `outcome` asks the provider how it ended. `evidence` is whatever the client SDK
/// hands back, passed through untouched.
pub trait FaceVerifier: Send + Sync {
    fn start(&self, binding: &BindingId) -> impl Future<Output = Result<String, AppError>> + Send;
    fn outcome(
        &self,
        certify_id: &str,
        evidence: &Value,
    ) -> impl Future<Output = Result<FaceOutcome, AppError>> + Send;
}

/// **Local simulator**, for laptops and tests only (production config refuses it): a session
/// passes when the client's evidence says `{"simulated_outcome": "pass"}`.
#[derive(Debug, Default, Clone, Copy)]
pub struct LocalFaceSimulator;

pub const SIMULATED_CERTIFY_PREFIX: &str = "local-sim-";

impl FaceVerifier for LocalFaceSimulator {
    async fn start(&self, _binding: &BindingId) -> Result<String, AppError> {
        Ok(format!(
            "{SIMULATED_CERTIFY_PREFIX}{}",
            uuid::Uuid::new_v4().simple()
        ))
    }

    async fn outcome(&self, certify_id: &str, evidence: &Value) -> Result<FaceOutcome, AppError> {
        if !certify_id.starts_with(SIMULATED_CERTIFY_PREFIX) {
            return Ok(FaceOutcome::Failed);
        }
        Ok(
            match evidence.get("simulated_outcome").and_then(Value::as_str) {
                Some("pass") => FaceOutcome::Passed,
                _ => FaceOutcome::Failed,
            },
        )
    }
}
