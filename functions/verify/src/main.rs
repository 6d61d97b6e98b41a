//! Lambda entry point: configuration, clients and the face verifier once per cold start.

mod handler;

use kincode_common::config::FaceVerifierKind;
use kincode_common::face::LocalFaceSimulator;
use kincode_common::services::Services;
use lambda_http::{run, service_fn, Error};

#[tokio::main]
async fn main() -> Result<(), Error> {
    kincode_common::telemetry::init();
    let services = Services::from_env().await?;
    // Production config refuses the simulator, so a deployment without a real provider fails
    // its cold start instead of waving people through.
    let face = match services.config.face_verifier()? {
        FaceVerifierKind::LocalSimulator => LocalFaceSimulator,
    };
    run(service_fn(|req| {
        handler::handle(&services, &face, req, chrono::Utc::now())
    }))
    .await
}
