//! The TLS path every deployed call takes (common/src/adapters/outbound.rs): the project's own HTTPS
//! client, with Mozilla's roots compiled in, against a local stack that speaks TLS with a
//! certificate of a CA made for this test. The store works through it when that CA is
//! trusted, and refuses the stack (503, nothing written) when it is not: the certificate is
//! really checked, and the compiled-in roots alone trust no stranger.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use chrono::Utc;
use kincode_common::error::AppError;
use kincode_tests::{
    all_items, bind_relative, distinct_resident_id, local_config_trusting, repo_root,
    services_with_table,
};

/// scripts/local_stack.py with `--tls-dir`, on a port of its own; stopped when dropped.
struct TlsStack {
    server: Child,
    url: String,
    ca: PathBuf,
    dir: PathBuf,
}

impl TlsStack {
    fn start() -> Self {
        let python = PathBuf::from(std::env::var("VIRTUAL_ENV").expect(
            "VIRTUAL_ENV is not set: run the tests with `scripts/test` (it starts the local AWS stack and its venv)",
        ))
        .join("bin/python");
        let dir = std::env::temp_dir().join(format!("kincode-tls-{}", uuid::Uuid::new_v4()));
        let mut server = Command::new(python)
            .arg(repo_root().join("scripts/local_stack.py"))
            .args(["--host", "127.0.0.1", "--port", "0", "--exit-with-parent"])
            .arg("--tls-dir")
            .arg(&dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the TLS stack");
        let mut ready = String::new();
        BufReader::new(server.stdout.take().expect("stdout"))
            .read_line(&mut ready)
            .expect("READY line");
        let url = ready
            .strip_prefix("READY ")
            .expect("the stack says READY")
            .trim()
            .to_owned();
        assert!(url.starts_with("https://127.0.0.1:"), "{url}");
        Self {
            server,
            url,
            ca: dir.join("ca.pem"),
            dir,
        }
    }
}

impl Drop for TlsStack {
    fn drop(&mut self) {
        let _ = self.server.kill();
        let _ = self.server.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[tokio::test]
async fn the_store_speaks_tls_to_a_stack_whose_ca_it_trusts_and_to_no_other() {
    let stack = TlsStack::start();
    let table = format!("kincode-tls-{}", uuid::Uuid::new_v4().simple());
    let ca = stack.ca.to_str().expect("utf-8 path").to_owned();
    let trusting = services_with_table(local_config_trusting(&table, &stack.url, Some(ca))).await;
    let now = Utc::now();

    let bound = bind_relative(
        &trusting,
        "guardian-tls",
        &distinct_resident_id(5, now),
        now,
    )
    .await
    .expect("a bind over TLS");
    let items = all_items(&trusting).await;
    assert!(!items.is_empty());

    // The same stack, the CA not trusted: the handshake fails on the certificate, the SDK's
    // retries give up, and the caller gets 503 with nothing written.
    let config = local_config_trusting(&table, &stack.url, None);
    let stranger = kincode_common::wiring::services::Services::from_config(config)
        .await
        .expect("services");
    let refused = bind_relative(
        &stranger,
        "guardian-tls",
        &distinct_resident_id(70, now),
        now,
    )
    .await
    .expect_err("an untrusted certificate");
    assert!(
        matches!(refused, AppError::DependencyUnavailable(_)),
        "{refused:?}"
    );
    assert_eq!(refused.status(), 503);
    assert_eq!(all_items(&trusting).await.len(), items.len());
    assert!(trusting
        .store
        .binding(&bound.guardian, &bound.id)
        .await
        .expect("read over TLS")
        .is_some());
}
