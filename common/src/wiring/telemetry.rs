//! Logging: Lambda's advanced logging controls (`AWS_LAMBDA_LOG_LEVEL`, `AWS_LAMBDA_LOG_FORMAT`),
//! as `lambda_runtime`'s default subscriber reads them, with one difference: the runtime's own
//! TRACE output is never enabled, because it prints the raw event (names, ID numbers).

use lambda_http::tracing::subscriber::filter::{LevelFilter, Targets};
use lambda_http::tracing::subscriber::fmt::MakeWriter;
use lambda_http::tracing::subscriber::layer::SubscriberExt;
use lambda_http::tracing::Subscriber;

/// The filter for a requested level: at most DEBUG for the runtime crates. Targets, not an
/// `EnvFilter`: the same target directives without a regex engine in every bootstrap.
pub fn filter(level: Option<&str>) -> Targets {
    let level = level
        .and_then(|l| l.parse::<LevelFilter>().ok())
        .unwrap_or(LevelFilter::INFO);
    // In `tracing`, more verbose levels compare greater.
    let runtime = level.min(LevelFilter::DEBUG);
    Targets::new()
        .with_default(level)
        .with_target("lambda_runtime", runtime)
        .with_target("lambda_http", runtime)
}

/// How log lines are written (`AWS_LAMBDA_LOG_FORMAT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

impl LogFormat {
    /// `JSON` (any case) is JSON; anything else, or nothing, is text.
    pub fn from_setting(setting: Option<&str>) -> Self {
        match setting {
            Some(f) if f.eq_ignore_ascii_case("json") => Self::Json,
            _ => Self::Text,
        }
    }
}

pub fn subscriber<W>(
    writer: W,
    level: Option<&str>,
    format: LogFormat,
) -> Box<dyn Subscriber + Send + Sync>
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let builder = lambda_http::tracing::subscriber::fmt()
        .with_target(false)
        .without_time()
        .with_ansi(false)
        .with_max_level(LevelFilter::TRACE)
        .with_writer(writer);
    match format {
        LogFormat::Json => Box::new(builder.json().finish().with(filter(level))),
        LogFormat::Text => Box::new(builder.finish().with(filter(level))),
    }
}

/// Installs the process-wide subscriber, once per cold start.
pub fn init() {
    let level = std::env::var("AWS_LAMBDA_LOG_LEVEL")
        .or_else(|_| std::env::var("RUST_LOG"))
        .ok();
    let format = LogFormat::from_setting(std::env::var("AWS_LAMBDA_LOG_FORMAT").ok().as_deref());
    lambda_http::tracing::subscriber::util::SubscriberInitExt::init(subscriber(
        std::io::stdout,
        level.as_deref(),
        format,
    ));
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Buffer {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn runtime_trace_output_stays_off_even_at_trace_level() {
        let buffer = Buffer::default();
        let writer = buffer.clone();
        let sub = subscriber(move || writer.clone(), Some("trace"), LogFormat::Json);
        lambda_http::tracing::dispatcher::with_default(
            &lambda_http::tracing::Dispatch::new(sub),
            || {
                lambda_http::tracing::trace!(target: "lambda_runtime::layers::api_response", body = "raw event", "raw JSON event received from Lambda");
                lambda_http::tracing::trace!(target: "kincode_common::store", "our own trace line");
            },
        );
        let out = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
        assert!(!out.contains("raw event"), "{out}");
        assert!(out.contains("our own trace line"), "{out}");
    }
}
