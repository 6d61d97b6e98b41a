//! `template.yaml`, read as the one source of truth for routes, functions, their environment
//! and the table schema.

use std::collections::HashMap;
use std::path::Path;

use serde_yaml::Value as Yaml;

/// A parsed template. serde_yaml drops CloudFormation tags, so `!Ref Table` reads as `Table`
/// and `!Sub "…"` as its template string.
pub struct Template(Yaml);

/// An HTTP API route and the function behind it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub method: String,
    /// API Gateway path template, e.g. `/relatives/{binding_id}`.
    pub path: String,
    /// Logical id of the function resource, e.g. `BindFunction`.
    pub function: String,
}

impl Route {
    /// API Gateway's `routeKey`.
    pub fn key(&self) -> String {
        format!("{} {}", self.method, self.path)
    }

    /// Path parameters when `path` matches this route's template.
    pub fn matches(&self, method: &str, path: &str) -> Option<HashMap<String, String>> {
        if !self.method.eq_ignore_ascii_case(method) {
            return None;
        }
        let template: Vec<&str> = self.path.trim_matches('/').split('/').collect();
        let actual: Vec<&str> = path.trim_matches('/').split('/').collect();
        if template.len() != actual.len() {
            return None;
        }
        let mut params = HashMap::new();
        for (t, a) in template.iter().zip(&actual) {
            match t.strip_prefix('{').and_then(|t| t.strip_suffix('}')) {
                Some(name) if !a.is_empty() => {
                    params.insert(name.to_owned(), (*a).to_owned());
                }
                Some(_) => return None,
                None if t == a => {}
                None => return None,
            }
        }
        Some(params)
    }
}

impl Template {
    pub fn load(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        serde_yaml::from_str(&text)
            .map(Self)
            .map_err(|e| format!("{}: {e}", path.display()))
    }

    pub fn resource(&self, name: &str) -> &Yaml {
        &self.0["Resources"][name]
    }

    pub fn resources_of_type<'a>(
        &'a self,
        kind: &'a str,
    ) -> impl Iterator<Item = (&'a str, &'a Yaml)> + 'a {
        self.0["Resources"]
            .as_mapping()
            .into_iter()
            .flatten()
            .filter(move |(_, r)| r["Type"].as_str() == Some(kind))
            .map(|(name, r)| (name.as_str().unwrap_or_default(), r))
    }

    /// Function logical ids with the binary each one builds.
    pub fn functions(&self) -> Vec<(String, String)> {
        self.resources_of_type("AWS::Serverless::Function")
            .filter_map(|(name, r)| {
                let binary = r["Metadata"]["BuildProperties"]["Binary"].as_str()?;
                Some((name.to_owned(), binary.to_owned()))
            })
            .collect()
    }

    /// Every `HttpApi` event of every function.
    pub fn routes(&self) -> Vec<Route> {
        let mut routes = Vec::new();
        for (function, resource) in self.resources_of_type("AWS::Serverless::Function") {
            for (_, event) in resource["Properties"]["Events"]
                .as_mapping()
                .into_iter()
                .flatten()
            {
                if event["Type"].as_str() != Some("HttpApi") {
                    continue;
                }
                let props = &event["Properties"];
                if let (Some(method), Some(path)) =
                    (props["Method"].as_str(), props["Path"].as_str())
                {
                    routes.push(Route {
                        method: method.to_ascii_uppercase(),
                        path: path.to_owned(),
                        function: function.to_owned(),
                    });
                }
            }
        }
        routes
    }

    /// A function's environment as deployed: Globals merged with its own.
    pub fn function_environment(&self, function: &str) -> HashMap<String, String> {
        let globals = &self.0["Globals"]["Function"]["Environment"]["Variables"];
        let own = &self.resource(function)["Properties"]["Environment"]["Variables"];
        [globals, own]
            .into_iter()
            .filter_map(Yaml::as_mapping)
            .flatten()
            .map(|(k, v)| {
                let value = v.as_str().map(str::to_owned).unwrap_or_default();
                (k.as_str().unwrap_or_default().to_owned(), value)
            })
            .collect()
    }

    pub fn table_properties(&self) -> &Yaml {
        &self.resource("Table")["Properties"]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(method: &str, path: &str) -> Route {
        Route {
            method: method.into(),
            path: path.into(),
            function: "F".into(),
        }
    }

    #[test]
    fn routes_match_templates_and_extract_parameters() {
        let r = route("POST", "/relatives/{binding_id}/verification");
        let params = r.matches("post", "/relatives/abc/verification").unwrap();
        assert_eq!(params["binding_id"], "abc");
        assert!(r.matches("POST", "/relatives//verification").is_none());
        assert!(r.matches("GET", "/relatives/abc/verification").is_none());
        assert!(r
            .matches("POST", "/relatives/abc/verification/complete")
            .is_none());
        assert_eq!(
            route("GET", "/relatives")
                .matches("GET", "/relatives")
                .unwrap()
                .len(),
            0
        );
        assert_eq!(r.key(), "POST /relatives/{binding_id}/verification");
    }

    #[test]
    fn the_projects_template_has_a_route_per_function() {
        let template =
            Template::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../template.yaml"))
                .unwrap();
        let routes = template.routes();
        for (function, _) in template.functions() {
            assert!(
                routes.iter().any(|r| r.function == function),
                "{function} has no route"
            );
        }
        assert!(routes
            .iter()
            .any(|r| r.key() == "DELETE /relatives/{binding_id}"));
    }
}
