//! Stands in for EventBridge Scheduler, locally only: `POST /_local/schedules/{Function}` invokes
//! the function with its schedule's `Input` as the raw event, as the schedule does when it fires.
//! The path has no counterpart in the deployed API and needs no `Authorization`.

use hyper::http::StatusCode;
use serde_json::Value;

use crate::apigw::Outgoing;

pub const PATH_PREFIX: &str = "/_local/schedules/";

/// The endpoint that runs `function`'s schedule.
pub fn path(function: &str) -> String {
    format!("{PATH_PREFIX}{function}")
}

/// The function logical id a request path names, if it is a schedule path.
pub fn function_in_path(path: &str) -> Option<&str> {
    path.strip_prefix(PATH_PREFIX).map(|f| f.trim_matches('/'))
}

/// The function's result as the answer: its JSON with 200, or with 502 when it is a function
/// error (the runtime's `errorType`/`errorMessage` document, shown as is: this is local). The
/// second value is the cause, for the log line.
pub fn answer(payload: &[u8]) -> (Outgoing, Option<String>) {
    let Ok(result) = serde_json::from_slice::<Value>(payload) else {
        return (
            Outgoing::gateway(StatusCode::BAD_GATEWAY, "Internal Server Error"),
            Some("function answer is not JSON".to_owned()),
        );
    };
    match result
        .get("errorType")
        .filter(|_| result.get("errorMessage").is_some())
    {
        Some(kind) => {
            let cause = format!("function error ({})", kind.as_str().unwrap_or("unknown"));
            (
                Outgoing::json(StatusCode::BAD_GATEWAY, &result),
                Some(cause),
            )
        }
        None => (Outgoing::json(StatusCode::OK, &result), None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_paths_name_a_function() {
        assert_eq!(path("CleanupFunction"), "/_local/schedules/CleanupFunction");
        assert_eq!(
            function_in_path("/_local/schedules/CleanupFunction/"),
            Some("CleanupFunction")
        );
        assert_eq!(function_in_path("/relatives"), None);
    }

    #[test]
    fn results_answer_200_and_function_errors_502() {
        let (ok, cause) = answer(br#"{"deleted":3}"#);
        assert_eq!((ok.status, cause), (StatusCode::OK, None));
        assert_eq!(ok.body, br#"{"deleted":3}"#);
        assert_eq!(ok.headers["content-type"], "application/json");

        let (failed, cause) = answer(br#"{"errorType":"&str","errorMessage":"unknown job `x`"}"#);
        assert_eq!(failed.status, StatusCode::BAD_GATEWAY);
        assert_eq!(cause.as_deref(), Some("function error (&str)"));
        let body: Value = serde_json::from_slice(&failed.body).unwrap();
        assert_eq!(body["errorMessage"], "unknown job `x`");

        let (garbled, cause) = answer(b"not json");
        assert_eq!(garbled.status, StatusCode::BAD_GATEWAY);
        assert!(cause.is_some());
    }
}
