//! API Gateway HTTP API (payload format 2.0): HTTP request → event, function result → HTTP.

use std::collections::{BTreeMap, HashMap};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use chrono::{DateTime, Utc};
use hyper::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use serde::Deserialize;
use serde_json::{json, Map, Value};

use crate::template::Route;

/// What the gateway knows about one incoming request.
pub struct Incoming<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub query: Option<&'a str>,
    pub headers: &'a HeaderMap,
    pub body: &'a [u8],
    pub source_ip: &'a str,
}

fn is_text(headers: &HeaderMap) -> bool {
    let content_type = headers
        .get(hyper::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    content_type.is_empty()
        || content_type.starts_with("text/")
        || content_type.contains("json")
        || content_type.contains("xml")
        || content_type.contains("x-www-form-urlencoded")
}

/// The event API Gateway would send. Like API Gateway, repeated headers and query parameters
/// are joined with commas, and cookies move to their own list. `claims` is `None` on a public
/// route, whose event has no `requestContext.authorizer`.
pub fn event(
    incoming: &Incoming<'_>,
    route: &Route,
    path_parameters: &HashMap<String, String>,
    claims: Option<&BTreeMap<String, String>>,
    request_id: &str,
    now: DateTime<Utc>,
) -> Value {
    let mut headers: BTreeMap<String, String> = BTreeMap::new();
    let mut cookies = Vec::new();
    for (name, value) in incoming.headers {
        let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
        if name == hyper::header::COOKIE {
            cookies.extend(
                value
                    .split(';')
                    .map(|c| c.trim().to_owned())
                    .filter(|c| !c.is_empty()),
            );
            continue;
        }
        headers
            .entry(name.as_str().to_owned())
            .and_modify(|v| {
                v.push(',');
                v.push_str(&value);
            })
            .or_insert(value);
    }
    let mut query: BTreeMap<String, String> = BTreeMap::new();
    for (k, v) in form_urlencoded::parse(incoming.query.unwrap_or("").as_bytes()) {
        query
            .entry(k.into_owned())
            .and_modify(|existing| {
                existing.push(',');
                existing.push_str(&v);
            })
            .or_insert_with(|| v.into_owned());
    }
    let user_agent = headers.get("user-agent").cloned().unwrap_or_default();
    let domain = headers
        .get("host")
        .cloned()
        .unwrap_or_else(|| "localhost".into());
    let mut event = json!({
        "version": "2.0",
        "routeKey": route.key(),
        "rawPath": incoming.path,
        "rawQueryString": incoming.query.unwrap_or(""),
        "headers": headers,
        "requestContext": {
            "accountId": "000000000000",
            "apiId": "local",
            "domainName": domain,
            "domainPrefix": domain.split('.').next().unwrap_or("localhost"),
            "http": {
                "method": incoming.method,
                "path": incoming.path,
                "protocol": "HTTP/1.1",
                "sourceIp": incoming.source_ip,
                "userAgent": user_agent,
            },
            "requestId": request_id,
            "routeKey": route.key(),
            "stage": "$default",
            "time": now.format("%d/%b/%Y:%H:%M:%S +0000").to_string(),
            "timeEpoch": now.timestamp_millis(),
        },
        "isBase64Encoded": false,
    });
    if let Some(claims) = claims {
        event["requestContext"]["authorizer"] =
            json!({ "jwt": { "claims": claims, "scopes": null } });
    }
    if !cookies.is_empty() {
        event["cookies"] = json!(cookies);
    }
    if !query.is_empty() {
        event["queryStringParameters"] = json!(query);
    }
    if !path_parameters.is_empty() {
        event["pathParameters"] = json!(path_parameters);
    }
    if !incoming.body.is_empty() {
        match std::str::from_utf8(incoming.body) {
            Ok(text) if is_text(incoming.headers) => event["body"] = text.into(),
            _ => {
                event["body"] = B64.encode(incoming.body).into();
                event["isBase64Encoded"] = true.into();
            }
        }
    }
    event
}

/// A function's answer in payload format 2.0.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct FunctionResponse {
    status_code: u16,
    #[serde(default)]
    headers: Map<String, Value>,
    #[serde(default)]
    multi_value_headers: Map<String, Value>,
    #[serde(default)]
    cookies: Vec<String>,
    #[serde(default)]
    body: Option<String>,
    #[serde(default)]
    is_base64_encoded: bool,
}

/// An HTTP response to send back.
#[derive(Debug)]
pub struct Outgoing {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Outgoing {
    /// API Gateway's own answers (`{"message": "…"}`), for when no function answers.
    pub fn gateway(status: StatusCode, message: &str) -> Self {
        Self::json(status, &json!({ "message": message }))
    }

    pub fn json(status: StatusCode, body: &Value) -> Self {
        let mut headers = HeaderMap::new();
        headers.insert(
            hyper::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        Self {
            status,
            headers,
            body: body.to_string().into_bytes(),
        }
    }
}

/// Turns what the function returned into HTTP. A function error (the runtime's
/// `errorType`/`errorMessage`) or an unreadable answer is API Gateway's 502.
pub fn response(payload: &[u8]) -> Result<Outgoing, String> {
    let value: Value = serde_json::from_slice(payload).map_err(|e| {
        let start = String::from_utf8_lossy(&payload[..payload.len().min(80)]).into_owned();
        format!("function answer is not JSON ({e}): {start:?}")
    })?;
    if value.get("statusCode").is_none() {
        let kind = value
            .get("errorType")
            .and_then(Value::as_str)
            .unwrap_or("unknown");
        return Err(format!("function error ({kind})"));
    }
    let answer: FunctionResponse = serde_json::from_value(value)
        .map_err(|e| format!("function answer has the wrong shape: {e}"))?;
    let status = StatusCode::from_u16(answer.status_code).map_err(|e| e.to_string())?;
    let mut headers = HeaderMap::new();
    let mut put = |name: &str, value: &Value| {
        let text = match value {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        if let (Ok(name), Ok(value)) = (HeaderName::try_from(name), HeaderValue::try_from(text)) {
            headers.append(name, value);
        }
    };
    for (name, value) in &answer.headers {
        put(name, value);
    }
    for (name, values) in &answer.multi_value_headers {
        for value in values.as_array().into_iter().flatten() {
            put(name, value);
        }
    }
    for cookie in &answer.cookies {
        put("set-cookie", &Value::String(cookie.clone()));
    }
    let body = match answer.body {
        None => Vec::new(),
        Some(b) if answer.is_base64_encoded => {
            B64.decode(b).map_err(|e| format!("bad base64 body: {e}"))?
        }
        Some(b) => b.into_bytes(),
    };
    Ok(Outgoing {
        status,
        headers,
        body,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route() -> Route {
        Route {
            method: "POST".into(),
            path: "/relatives/{binding_id}".into(),
            function: "F".into(),
            auth: crate::template::RouteAuth::Jwt { scopes: vec![] },
        }
    }

    #[test]
    fn builds_a_v2_event_that_lambda_http_understands() {
        let mut headers = HeaderMap::new();
        headers.insert("content-type", HeaderValue::from_static("application/json"));
        headers.append("x-multi", HeaderValue::from_static("a"));
        headers.append("x-multi", HeaderValue::from_static("b"));
        headers.insert("cookie", HeaderValue::from_static("a=1; b=2"));
        let incoming = Incoming {
            method: "POST",
            path: "/relatives/abc",
            query: Some("x=1&x=2&name=%E7%8E%8B+a"),
            headers: &headers,
            body: "{\"a\":1}".as_bytes(),
            source_ip: "127.0.0.1",
        };
        let params = HashMap::from([("binding_id".to_owned(), "abc".to_owned())]);
        let claims = BTreeMap::from([("sub".to_owned(), "user-1".to_owned())]);
        let event = event(
            &incoming,
            &route(),
            &params,
            Some(&claims),
            "req-1",
            Utc::now(),
        );
        assert_eq!(event["headers"]["x-multi"], "a,b");
        assert_eq!(event["cookies"], json!(["a=1", "b=2"]));
        assert_eq!(event["queryStringParameters"]["x"], "1,2");
        assert_eq!(event["queryStringParameters"]["name"], "王 a");
        assert_eq!(event["body"], "{\"a\":1}");
        assert_eq!(
            event["requestContext"]["routeKey"],
            "POST /relatives/{binding_id}"
        );
        assert_eq!(
            event["requestContext"]["authorizer"]["jwt"]["claims"]["sub"],
            "user-1"
        );
        let public = super::event(&incoming, &route(), &params, None, "req-3", Utc::now());
        assert!(public["requestContext"].get("authorizer").is_none());

        let binary = Incoming {
            body: &[0xff, 0x00],
            ..incoming
        };
        let event = super::event(
            &binary,
            &route(),
            &params,
            Some(&claims),
            "req-2",
            Utc::now(),
        );
        assert_eq!(event["isBase64Encoded"], true);
        assert_eq!(event["body"], "/wA=");
    }

    #[test]
    fn reads_function_answers_and_turns_errors_into_502_material() {
        let ok = response(br#"{"statusCode":201,"headers":{"content-type":"application/json"},"body":"{}","isBase64Encoded":false}"#).unwrap();
        assert_eq!(ok.status, StatusCode::CREATED);
        assert_eq!(ok.body, b"{}");
        let png = response(br#"{"statusCode":200,"headers":{"content-type":"image/png"},"body":"iVBORw==","isBase64Encoded":true}"#).unwrap();
        assert_eq!(png.body, [0x89, b'P', b'N', b'G']);
        assert!(response(br#"{"errorType":"Runtime.ExitError","errorMessage":"boom"}"#).is_err());
        assert!(response(b"not json").is_err());
    }
}
