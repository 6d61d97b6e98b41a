//! Adapters to what lies outside besides DynamoDB (`store`): S3 (`blobs`), face recognition
//! (`face`: Alipay, and the local simulator) and the HTTPS client every outbound call uses
//! (`outbound`). Secrets Manager is read by the wiring (`wiring::secrets`).

pub mod blobs;
pub mod face;
pub mod outbound;
