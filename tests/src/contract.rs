//! The API contract, `openapi.yaml`: every answer the handler and end-to-end tests see is
//! checked against it, so the document cannot drift from the code.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use jsonschema::Validator;
use serde_json::{json, Value};

use kincode_localdev::template::path_parameters;

use crate::repo_root;

pub struct Contract {
    pub document: Value,
    /// Compiled response schemas, by JSON pointer into the document.
    validators: Mutex<HashMap<String, Arc<Validator>>>,
}

/// `openapi.yaml`, read once per test binary.
pub fn contract() -> &'static Contract {
    static CONTRACT: OnceLock<Contract> = OnceLock::new();
    CONTRACT.get_or_init(|| {
        let path = repo_root().join("openapi.yaml");
        let text =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let document = serde_yaml::from_str(&text).expect("openapi.yaml is YAML");
        Contract {
            document,
            validators: Mutex::default(),
        }
    })
}

/// Escapes a path template for a JSON pointer (`/relatives/{binding_id}` → `~1relatives~1…`).
fn pointer_token(token: &str) -> String {
    token.replace('~', "~0").replace('/', "~1")
}

impl Contract {
    /// The path template of the operation serving `method` on a concrete `path`. Literal
    /// segments win over parameters, as API Gateway routes them.
    pub fn route(&self, method: &str, path: &str) -> Option<String> {
        let method = method.to_ascii_lowercase();
        let paths = self.document["paths"].as_object()?;
        paths
            .iter()
            .filter(|(template, item)| {
                path_parameters(template, path).is_some() && item.get(&method).is_some()
            })
            .min_by_key(|(template, _)| template.matches('{').count())
            .map(|(template, _)| template.clone())
    }

    /// Follows a `$ref` within the document.
    fn resolve<'a>(&'a self, value: &'a Value) -> &'a Value {
        match value.get("$ref").and_then(Value::as_str) {
            Some(reference) => self
                .document
                .pointer(reference.trim_start_matches('#'))
                .unwrap_or_else(|| panic!("openapi.yaml: dangling {reference}")),
            None => value,
        }
    }

    fn validator(&self, pointer: &str, schema: &Value) -> Arc<Validator> {
        let mut validators = self.validators.lock().expect("lock");
        validators
            .entry(pointer.to_owned())
            .or_insert_with(|| {
                // The schema sits in a root that carries the document's components, so its
                // `#/components/schemas/…` references resolve as they do in the document.
                let root = json!({
                    "$schema": "https://json-schema.org/draft/2020-12/schema",
                    "components": self.document["components"],
                    "allOf": [schema],
                });
                Arc::new(
                    jsonschema::options()
                        .should_validate_formats(true)
                        .build(&root)
                        .unwrap_or_else(|e| panic!("openapi.yaml {pointer}: {e}")),
                )
            })
            .clone()
    }

    /// Panics, naming what differs, unless `openapi.yaml` documents this answer: the status for
    /// the operation, the content type, and (for JSON) the body against the status's schema.
    pub fn check(
        &self,
        method: &str,
        path: &str,
        status: u16,
        content_type: Option<&str>,
        body: &[u8],
    ) {
        let request = format!("{method} {path}");
        let template = self
            .route(method, path)
            .unwrap_or_else(|| panic!("{request}: no such operation in openapi.yaml"));
        let operation_pointer = format!(
            "/paths/{}/{}",
            pointer_token(&template),
            method.to_ascii_lowercase()
        );
        let answer = self
            .document
            .pointer(&format!("{operation_pointer}/responses/{status}"))
            .unwrap_or_else(|| {
                panic!(
                    "{request} answered {status}, which openapi.yaml does not document for it: {}",
                    String::from_utf8_lossy(body)
                )
            });
        let answer = self.resolve(answer);
        let Some(content) = answer.get("content").and_then(Value::as_object) else {
            assert!(
                body.is_empty(),
                "{request} {status}: openapi.yaml documents no body, got {}",
                String::from_utf8_lossy(body)
            );
            return;
        };
        let media_type = content_type
            .and_then(|value| value.split(';').next())
            .map(str::trim)
            .unwrap_or_else(|| panic!("{request} {status}: no content type"));
        let media = content.get(media_type).unwrap_or_else(|| {
            panic!("{request} {status}: content type {media_type} is not documented")
        });
        let Some(schema) = media.get("schema") else {
            return;
        };
        if media_type != "application/json" {
            return;
        }
        let instance: Value = serde_json::from_slice(body)
            .unwrap_or_else(|e| panic!("{request} {status}: body is not JSON ({e})"));
        let validator = self.validator(
            &format!("{operation_pointer}/responses/{status}/{media_type}"),
            schema,
        );
        let errors: Vec<String> = validator
            .iter_errors(&instance)
            .map(|error| format!("{} at {}", error, error.instance_path()))
            .collect();
        assert!(
            errors.is_empty(),
            "{request} {status}: the body breaks openapi.yaml:\n  {}\nbody: {instance}",
            errors.join("\n  ")
        );
    }
}
