//! `template.yaml`, read as the one source of truth for routes, schedules, functions, their
//! environment and the table schema.

use std::collections::HashMap;
use std::path::Path;

use serde_json::Value;
use serde_yaml::Value as Yaml;

/// A parsed template. serde_yaml drops CloudFormation tags, so `!Ref Table` reads as `Table`
/// and `!Sub "…"` as its template string.
pub struct Template(Yaml);

/// What API Gateway checks before a route's function runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteAuth {
    /// `Authorizer: NONE` (or an API without a default authorizer): anyone may call, and the
    /// event carries no `requestContext.authorizer`.
    Public,
    /// The JWT authorizer: a valid token, and when `scopes` is not empty, a `scope` (or `scp`)
    /// claim holding at least one of them.
    Jwt { scopes: Vec<String> },
}

/// An HTTP API route and the function behind it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub method: String,
    /// API Gateway path template, e.g. `/relatives/{binding_id}`.
    pub path: String,
    /// Logical id of the function resource, e.g. `BindFunction`.
    pub function: String,
    pub auth: RouteAuth,
}

/// A `ScheduleV2` event: EventBridge Scheduler invokes `function` with `input` as the raw event.
#[derive(Debug, Clone, PartialEq)]
pub struct Schedule {
    pub function: String,
    /// The event's name in the template, e.g. `Hourly`.
    pub name: String,
    pub expression: String,
    pub input: Value,
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
        path_parameters(&self.path, path)
    }
}

/// The parameters of a path template (`/relatives/{binding_id}`) in a concrete path, when
/// the path fits the template.
pub fn path_parameters(template: &str, path: &str) -> Option<HashMap<String, String>> {
    let template: Vec<&str> = template.trim_matches('/').split('/').collect();
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

    /// Function logical ids with the binary each one builds: its crate's directory,
    /// `CodeUri: functions/<binary>` (the root Makefile builds it).
    pub fn functions(&self) -> Vec<(String, String)> {
        self.resources_of_type("AWS::Serverless::Function")
            .filter_map(|(name, r)| {
                let binary = r["Properties"]["CodeUri"]
                    .as_str()?
                    .strip_prefix("functions/")?;
                Some((name.to_owned(), binary.to_owned()))
            })
            .collect()
    }

    /// Every event of type `kind`, as (function, event name, event properties).
    fn events_of_type<'a>(
        &'a self,
        kind: &'a str,
    ) -> impl Iterator<Item = (&'a str, &'a str, &'a Yaml)> + 'a {
        self.resources_of_type("AWS::Serverless::Function")
            .flat_map(|(function, resource)| {
                resource["Properties"]["Events"]
                    .as_mapping()
                    .into_iter()
                    .flatten()
                    .map(move |(name, event)| (function, name.as_str().unwrap_or_default(), event))
            })
            .filter(move |(_, _, event)| event["Type"].as_str() == Some(kind))
            .map(|(function, name, event)| (function, name, &event["Properties"]))
    }

    /// Every `HttpApi` event of every function.
    pub fn routes(&self) -> Vec<Route> {
        self.events_of_type("HttpApi")
            .filter_map(|(function, _, props)| {
                Some(Route {
                    method: props["Method"].as_str()?.to_ascii_uppercase(),
                    path: props["Path"].as_str()?.to_owned(),
                    function: function.to_owned(),
                    auth: self.route_auth(props),
                })
            })
            .collect()
    }

    /// A route's own `Auth`, else its API's default authorizer, as SAM resolves them. Scopes
    /// come from the route, else from the authorizer's own `AuthorizationScopes`.
    fn route_auth(&self, route: &Yaml) -> RouteAuth {
        // `ApiId: !Ref Api` reads as `Api`.
        let api_auth =
            &self.resource(route["ApiId"].as_str().unwrap_or_default())["Properties"]["Auth"];
        let authorizer = route["Auth"]["Authorizer"]
            .as_str()
            .or(api_auth["DefaultAuthorizer"].as_str());
        match authorizer {
            None | Some("NONE") => RouteAuth::Public,
            Some(name) => {
                let scopes = [
                    &route["Auth"]["AuthorizationScopes"],
                    &api_auth["Authorizers"][name]["AuthorizationScopes"],
                ]
                .into_iter()
                .find_map(Yaml::as_sequence)
                .into_iter()
                .flatten()
                .filter_map(|s| s.as_str().map(str::to_owned))
                .collect();
                RouteAuth::Jwt { scopes }
            }
        }
    }

    /// Every `ScheduleV2` event of every function. Its `Input` is required: it is the event
    /// the function gets (a Lambda target's input must be JSON).
    pub fn schedules(&self) -> Result<Vec<Schedule>, String> {
        self.events_of_type("ScheduleV2")
            .map(|(function, name, props)| {
                let input = props["Input"]
                    .as_str()
                    .ok_or_else(|| format!("{function}.{name}: no Input"))?;
                Ok(Schedule {
                    function: function.to_owned(),
                    name: name.to_owned(),
                    expression: props["ScheduleExpression"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned(),
                    input: serde_json::from_str(input)
                        .map_err(|e| format!("{function}.{name}: Input is not JSON: {e}"))?,
                })
            })
            .collect()
    }

    /// A function's environment as deployed: Globals merged with its own, a `!Ref` to a
    /// parameter read as the parameter's default.
    pub fn function_environment(&self, function: &str) -> HashMap<String, String> {
        let globals = &self.0["Globals"]["Function"]["Environment"]["Variables"];
        let own = &self.resource(function)["Properties"]["Environment"]["Variables"];
        [globals, own]
            .into_iter()
            .filter_map(Yaml::as_mapping)
            .flatten()
            .map(|(k, v)| {
                let value = v.as_str().map(str::to_owned).unwrap_or_default();
                let value = self.parameter_default(&value).unwrap_or(value);
                (k.as_str().unwrap_or_default().to_owned(), value)
            })
            .collect()
    }

    /// The parameters that name a Secrets Manager secret (`…SecretName`).
    pub fn secret_name_parameters(&self) -> Vec<String> {
        self.0["Parameters"]
            .as_mapping()
            .into_iter()
            .flatten()
            .filter_map(|(name, _)| name.as_str())
            .filter(|name| name.ends_with("SecretName"))
            .map(str::to_owned)
            .collect()
    }

    /// A template parameter's `Default`, as text.
    pub fn parameter_default(&self, name: &str) -> Option<String> {
        match &self.0["Parameters"][name]["Default"] {
            Yaml::String(s) => Some(s.clone()),
            Yaml::Number(n) => Some(n.to_string()),
            _ => None,
        }
    }

    /// A function's `MemorySize` in MB: its own, else the template's global one.
    pub fn function_memory_mb(&self, function: &str) -> Option<u64> {
        self.resource(function)["Properties"]["MemorySize"]
            .as_u64()
            .or_else(|| self.0["Globals"]["Function"]["MemorySize"].as_u64())
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
            auth: RouteAuth::Jwt { scopes: vec![] },
        }
    }

    fn project_template() -> Template {
        Template::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../template.yaml")).unwrap()
    }

    fn find<'a>(routes: &'a [Route], key: &str) -> &'a Route {
        routes
            .iter()
            .find(|r| r.key() == key)
            .unwrap_or_else(|| panic!("no route {key}"))
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
    fn every_function_of_the_projects_template_has_a_route_or_a_schedule() {
        let template = project_template();
        let routes = template.routes();
        let schedules = template.schedules().unwrap();
        for (function, _) in template.functions() {
            assert!(
                routes.iter().any(|r| r.function == function)
                    || schedules.iter().any(|s| s.function == function),
                "{function} has neither a route nor a schedule"
            );
        }
    }

    #[test]
    fn the_projects_routes_carry_their_authorization() {
        let routes = project_template().routes();
        let guardian = RouteAuth::Jwt { scopes: vec![] };
        assert_eq!(
            find(&routes, "DELETE /relatives/{binding_id}").auth,
            guardian
        );
        assert_eq!(
            find(&routes, "GET /.well-known/kincode-keys").auth,
            RouteAuth::Public
        );
        assert_eq!(
            find(&routes, "POST /checkpoints/scan").auth,
            RouteAuth::Jwt {
                scopes: vec!["kincode/checkpoint".into()]
            }
        );
        assert_eq!(
            find(&routes, "POST /authority/risk-flags").auth,
            RouteAuth::Jwt {
                scopes: vec!["kincode/authority".into()]
            }
        );
        assert_eq!(
            find(&routes, "GET /.well-known/kincode-keys").function,
            "KeysFunction"
        );
    }

    #[test]
    fn the_projects_cleanup_schedule_is_found_with_its_input() {
        let schedules = project_template().schedules().unwrap();
        let cleanup = schedules
            .iter()
            .find(|s| s.function == "CleanupFunction")
            .expect("cleanup schedule");
        assert_eq!(cleanup.name, "Hourly");
        assert_eq!(cleanup.input, serde_json::json!({"job": "cleanup"}));
        assert!(cleanup.expression.starts_with("cron("));
    }

    #[test]
    fn routes_without_their_own_auth_follow_the_api_default() {
        let template = Template(
            serde_yaml::from_str(
                r#"
Resources:
  Open:
    Type: AWS::Serverless::HttpApi
  Guarded:
    Type: AWS::Serverless::HttpApi
    Properties:
      Auth:
        DefaultAuthorizer: Jwt
        Authorizers:
          Jwt:
            AuthorizationScopes: [a/b]
  F:
    Type: AWS::Serverless::Function
    Properties:
      Events:
        One: {Type: HttpApi, Properties: {ApiId: !Ref Open, Method: get, Path: /one}}
        Two: {Type: HttpApi, Properties: {ApiId: !Ref Guarded, Method: get, Path: /two}}
        Job: {Type: ScheduleV2, Properties: {ScheduleExpression: rate(1 hour)}}
"#,
            )
            .unwrap(),
        );
        let routes = template.routes();
        assert_eq!(find(&routes, "GET /one").auth, RouteAuth::Public);
        assert_eq!(
            find(&routes, "GET /two").auth,
            RouteAuth::Jwt {
                scopes: vec!["a/b".into()]
            }
        );
        assert!(template
            .schedules()
            .unwrap_err()
            .contains("F.Job: no Input"));
    }
}
