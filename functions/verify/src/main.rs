//! Lambda entry point: a cold start with the configured face verifier, then the handler.

mod handler;

use kincode_common::adapters::face::{AlipayCertify, ConfiguredFace, LocalFaceSimulator};
use kincode_common::wiring::config::FaceVerifierKind;
use kincode_common::wiring::entry;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    let services = entry::cold_start().await?;
    // Production config refuses the simulator, so a deployment without a real provider fails
    // its cold start instead of waving people through.
    let face = match services.config.face_verifier()? {
        FaceVerifierKind::LocalSimulator => ConfiguredFace::Simulator(LocalFaceSimulator),
        FaceVerifierKind::Alipay(settings) => {
            ConfiguredFace::Alipay(Box::new(AlipayCertify::new(&settings)?))
        }
    };
    entry::serve(|req| handler::handle(services, &face, req, chrono::Utc::now())).await
}
