//! S3 adapter: offline card images and household sheets (a PDF and its PNG preview). Keys carry
//! no personal data and objects no metadata; every object is server-side encrypted; readers get
//! presigned URLs that live minutes.

use std::time::Duration;

use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::ServerSideEncryption;
use aws_sdk_s3::Client;
use bytes::Bytes;

use crate::error::AppError;

/// How long a download link works: long enough to open it, too short to pass around.
pub fn download_url_lifetime() -> Duration {
    Duration::from_secs(5 * 60)
}

/// What a stored object is, from its key: the sheets' PDFs, otherwise PNG pictures.
fn content_type(key: &str) -> &'static str {
    if key.ends_with(".pdf") {
        "application/pdf"
    } else {
        "image/png"
    }
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

    /// Fresh keys for a household sheet's PDF and its preview: one random stem, so the two are
    /// seen to belong together and say nothing about whose they are.
    pub fn new_sheet_keys() -> (String, String) {
        let stem = format!("household/{}", uuid::Uuid::new_v4().simple());
        (format!("{stem}.pdf"), format!("{stem}.png"))
    }

    /// Stores `body` under `key`, typed by the key's extension (`.pdf`, else a PNG).
    pub async fn put(&self, key: &str, body: Bytes) -> Result<(), AppError> {
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .body(ByteStream::from(body))
            .content_type(content_type(key))
            .cache_control("private, no-store")
            .server_side_encryption(ServerSideEncryption::Aes256)
            .send()
            .await
            .map_err(|e| s3_error("put object", e))?;
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
            .map_err(|e| s3_error("delete object", e))?;
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
            .response_content_type(content_type(key))
            .presigned(presigning)
            .await
            .map_err(|e| s3_error("presign download", e))?;
        Ok(request.uri().to_owned())
    }
}
