//! S3 adapter: offline card images. Keys carry no personal data and objects no metadata;
//! every object is server-side encrypted; readers get presigned URLs that live minutes.

use std::time::Duration;

use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::ServerSideEncryption;
use aws_sdk_s3::Client;

use crate::error::AppError;

/// How long a download link works: long enough to open it, too short to pass around.
pub fn download_url_lifetime() -> Duration {
    Duration::from_secs(5 * 60)
}

pub struct BlobStore {
    client: Client,
    bucket: String,
}

/// Transport trouble and throttling are an outage (503); anything else is our bug (500).
fn s3_error<E: std::error::Error + Send + Sync + 'static>(
    operation: &'static str,
    err: aws_sdk_s3::error::SdkError<E, aws_sdk_s3::config::http::HttpResponse>,
) -> AppError {
    let detail = format!(
        "{operation}: {}",
        aws_sdk_s3::error::DisplayErrorContext(&err)
    );
    match &err {
        aws_sdk_s3::error::SdkError::ServiceError(ctx)
            if ctx.raw().status().as_u16() < 500 && ctx.raw().status().as_u16() != 429 =>
        {
            AppError::Internal(detail)
        }
        _ => AppError::DependencyUnavailable(detail),
    }
}

impl BlobStore {
    pub fn new(client: Client, bucket: impl Into<String>) -> Self {
        Self {
            client,
            bucket: bucket.into(),
        }
    }

    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// A fresh object key: random, so it says nothing about whose card it is.
    pub fn new_card_key() -> String {
        format!("offline/{}.png", uuid::Uuid::new_v4().simple())
    }

    pub async fn put_png(&self, key: &str, png: Vec<u8>) -> Result<(), AppError> {
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .body(ByteStream::from(png))
            .content_type("image/png")
            .cache_control("private, no-store")
            .server_side_encryption(ServerSideEncryption::Aes256)
            .send()
            .await
            .map_err(|e| s3_error("put card", e))?;
        Ok(())
    }

    /// Deleting an absent object succeeds (S3 semantics), so this is safe to repeat.
    pub async fn delete(&self, key: &str) -> Result<(), AppError> {
        self.client
            .delete_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| s3_error("delete card", e))?;
        Ok(())
    }

    /// A GET URL for `key` valid for `download_url_lifetime()` from now.
    pub async fn download_url(&self, key: &str) -> Result<String, AppError> {
        let presigning = PresigningConfig::expires_in(download_url_lifetime())
            .map_err(|e| AppError::Internal(format!("presigning config: {e}")))?;
        let request = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .response_content_type("image/png")
            .presigned(presigning)
            .await
            .map_err(|e| s3_error("presign card", e))?;
        Ok(request.uri().to_owned())
    }
}
