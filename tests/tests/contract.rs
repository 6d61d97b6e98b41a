//! `openapi.yaml` agrees with the code: the same routes, scopes and functions as
//! `template.yaml`, every error the functions can answer (status, code, message), and the
//! README's error table, which is generated from it.

use std::collections::BTreeSet;

use kincode_common::codes::token::TokenError;
use kincode_common::domain::dispute::DisputeStatus;
use kincode_common::domain::nucleic::TubeKind;
use kincode_common::domain::resident_id::ResidentIdError;
use kincode_common::error::AppError;
use kincode_localdev::template::RouteAuth;
use kincode_tests::contract::contract;
use kincode_tests::{repo_root, Template};
use serde_json::Value;

/// (METHOD, path, function, scopes or `None` for a public route), from either document.
type RouteRow = (String, String, String, Option<Vec<String>>);

fn template_routes() -> BTreeSet<RouteRow> {
    let template = Template::load(&repo_root().join("template.yaml")).unwrap();
    template
        .routes()
        .into_iter()
        .map(|route| {
            let scopes = match route.auth {
                RouteAuth::Public => None,
                RouteAuth::Jwt { scopes } => Some(scopes),
            };
            (
                route.method.to_uppercase(),
                route.path,
                route.function,
                scopes,
            )
        })
        .collect()
}

fn contract_routes() -> BTreeSet<RouteRow> {
    let document = &contract().document;
    let default_security = &document["security"];
    let mut routes = BTreeSet::new();
    for (path, item) in document["paths"].as_object().expect("paths") {
        let operations = item
            .as_object()
            .expect("path item")
            .iter()
            .filter(|(key, _)| {
                ["get", "put", "post", "delete", "patch", "head", "options"].contains(&key.as_str())
            });
        for (method, operation) in operations {
            let function = operation["x-kincode-function"]
                .as_str()
                .unwrap_or_else(|| panic!("{method} {path}: x-kincode-function"));
            let security = operation.get("security").unwrap_or(default_security);
            let scopes = security
                .as_array()
                .expect("security")
                .first()
                .map(|requirement| {
                    requirement["CityPlatformJwt"]
                        .as_array()
                        .expect("CityPlatformJwt requirement")
                        .iter()
                        .map(|scope| scope.as_str().expect("scope").to_owned())
                        .collect()
                });
            routes.insert((
                method.to_uppercase(),
                path.clone(),
                function.to_owned(),
                scopes,
            ));
        }
    }
    routes
}

#[test]
fn the_contract_has_the_templates_routes_functions_and_scopes() {
    let (template, contract) = (template_routes(), contract_routes());
    assert_eq!(
        template.difference(&contract).collect::<Vec<_>>(),
        Vec::<&RouteRow>::new(),
        "in template.yaml, not in openapi.yaml"
    );
    assert_eq!(
        contract.difference(&template).collect::<Vec<_>>(),
        Vec::<&RouteRow>::new(),
        "in openapi.yaml, not in template.yaml"
    );
}

/// One of each error the functions can answer.
fn every_error() -> Vec<AppError> {
    use AppError::*;
    let at = chrono::DateTime::UNIX_EPOCH;
    let mut all = vec![
        Unauthenticated,
        MalformedRequest(String::new()),
        BodyTooLarge,
        InvalidResidentId(ResidentIdError::WrongLength),
        InvalidName,
        InvalidRelationship,
        ConsentRequired,
        AgeNotEligible(30),
        AlreadyBound,
        GuardianLimitReached,
        RelativeLimitReached,
        IdempotencyKeyReused,
        BindingNotFound,
        UnbindTooEarly { available_at: at },
        AlreadyVerified,
        VerificationNotStarted,
        PledgeOutdated,
        FaceVerificationFailed,
        TooManyFaceAttempts { retry_at: at },
        TooManyFaceQueries,
        Conflict,
        Forbidden,
        VerificationRequired,
        OfflineCodeLimitReached,
        OfflineCodeNotFound,
        NoVerifiedRelatives,
        CodeRevoked,
        KinCodeNotForArrival,
        InvalidPurpose,
        BatchTooLarge { max_rows: 500 },
        SiteNotAssigned,
        InvalidTubeId,
        InvalidTubeKind,
        TubeFull { capacity: 10 },
        TubeKindMismatch {
            tube_kind: TubeKind::Single,
        },
        TubeClosed,
        TubeAtAnotherSite,
        PoolingNotAllowed,
        AlreadyInTube,
        InvalidCursor,
        FaceNotFinished,
        FaceSessionExpired,
        FaceProviderUntrusted,
        GuardianNotFound,
        DisputeOwnBinding,
        InvalidDisputeReason,
        InvalidDisputeDetails,
        DisputeAlreadyOpen,
        TooManyDisputes,
        DisputeNotFound,
        DisputeAlreadyResolved {
            outcome: DisputeStatus::Upheld,
        },
        InvalidDecision,
        BindingBanned { until: at },
        DependencyUnavailable(String::new()),
        Internal(String::new()),
    ];
    all.extend(TokenError::ALL.map(InvalidCode));
    // A new variant stops this match compiling until it is listed above too.
    for error in &all {
        match error {
            Unauthenticated
            | MalformedRequest(_)
            | BodyTooLarge
            | InvalidResidentId(_)
            | InvalidName
            | InvalidRelationship
            | ConsentRequired
            | AgeNotEligible(_)
            | AlreadyBound
            | GuardianLimitReached
            | RelativeLimitReached
            | IdempotencyKeyReused
            | BindingNotFound
            | UnbindTooEarly { .. }
            | AlreadyVerified
            | VerificationNotStarted
            | PledgeOutdated
            | FaceVerificationFailed
            | TooManyFaceAttempts { .. }
            | TooManyFaceQueries
            | Conflict
            | Forbidden
            | VerificationRequired
            | OfflineCodeLimitReached
            | OfflineCodeNotFound
            | NoVerifiedRelatives
            | InvalidCode(_)
            | CodeRevoked
            | KinCodeNotForArrival
            | InvalidPurpose
            | BatchTooLarge { .. }
            | SiteNotAssigned
            | InvalidTubeId
            | InvalidTubeKind
            | TubeFull { .. }
            | TubeKindMismatch { .. }
            | TubeClosed
            | TubeAtAnotherSite
            | PoolingNotAllowed
            | AlreadyInTube
            | InvalidCursor
            | FaceNotFinished
            | FaceSessionExpired
            | FaceProviderUntrusted
            | GuardianNotFound
            | DisputeOwnBinding
            | InvalidDisputeReason
            | InvalidDisputeDetails
            | DisputeAlreadyOpen
            | TooManyDisputes
            | DisputeNotFound
            | DisputeAlreadyResolved { .. }
            | InvalidDecision
            | BindingBanned { .. }
            | DependencyUnavailable(_)
            | Internal(_) => {}
        }
    }
    all
}

fn documented_errors() -> &'static Vec<Value> {
    contract().document["x-kincode-errors"]
        .as_array()
        .expect("x-kincode-errors")
}

#[test]
fn every_error_is_in_the_contract_with_its_status_and_message() {
    let documented = documented_errors();
    let mut codes = BTreeSet::new();
    for error in every_error() {
        codes.insert(error.code());
        let entry = documented
            .iter()
            .find(|entry| entry["code"] == error.code())
            .unwrap_or_else(|| panic!("{} is not in x-kincode-errors", error.code()));
        assert_eq!(
            (entry["status"].as_u64(), entry["message"].as_str()),
            (Some(u64::from(error.status())), Some(error.message())),
            "{}",
            error.code()
        );
        let body = serde_json::to_value(error.body()).expect("an error body");
        let problems: Vec<String> = jsonschema::validator_for(&error_schema())
            .expect("Error schema compiles")
            .iter_errors(&body)
            .map(|e| e.to_string())
            .collect();
        assert!(
            problems.is_empty(),
            "{body} breaks the Error schema: {problems:?}"
        );
    }
    let listed: BTreeSet<&str> = documented
        .iter()
        .map(|entry| entry["code"].as_str().expect("code"))
        .collect();
    assert_eq!(
        listed, codes,
        "x-kincode-errors lists exactly the codes the code has"
    );
    assert_eq!(listed.len(), documented.len(), "each code once");
}

/// `components.schemas.Error`, standing alone.
fn error_schema() -> Value {
    let document = &contract().document;
    serde_json::json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "components": document["components"],
        "$ref": "#/components/schemas/Error",
    })
}

const TABLE_START: &str = "<!-- error table: generated from openapi.yaml's x-kincode-errors by tests/tests/contract.rs -->";
const TABLE_END: &str = "<!-- end of error table -->";

fn error_table() -> String {
    let mut table = String::from("| status | code | message | when |\n| --- | --- | --- | --- |\n");
    for entry in documented_errors() {
        table.push_str(&format!(
            "| {} | `{}` | {} | {} |\n",
            entry["status"],
            entry["code"].as_str().unwrap(),
            entry["message"].as_str().unwrap(),
            entry["note"]
                .as_str()
                .unwrap_or_default()
                .replace('|', "\\|"),
        ));
    }
    table
}

/// Run with `KINCODE_WRITE_README=1` to regenerate the table after changing the contract.
#[test]
fn the_readme_error_table_is_the_contracts() {
    let path = repo_root().join("README.md");
    let readme = std::fs::read_to_string(&path).unwrap();
    let (before, rest) = readme
        .split_once(TABLE_START)
        .expect("README.md has the error table's start marker");
    let (_, after) = rest
        .split_once(TABLE_END)
        .expect("README.md has the error table's end marker");
    let expected = format!("{before}{TABLE_START}\n{}{TABLE_END}{after}", error_table());
    if std::env::var_os("KINCODE_WRITE_README").is_some() {
        std::fs::write(&path, &expected).unwrap();
    }
    assert!(
        readme == expected,
        "README.md's error table differs from openapi.yaml; run \
         `KINCODE_WRITE_README=1 cargo test -p kincode-tests --test contract` and commit the result"
    );
}

/// The README's route table (`| \`POST /relatives\` | bind | …`) names exactly the contract's routes.
#[test]
fn the_readme_route_table_is_the_contracts() {
    let readme = std::fs::read_to_string(repo_root().join("README.md")).unwrap();
    let in_readme: BTreeSet<(String, String)> = readme
        .lines()
        .filter_map(|line| {
            let route = line.strip_prefix("| `")?.split('`').next()?;
            let (method, path) = route.split_once(' ')?;
            let is_method = ["GET", "POST", "PUT", "PATCH", "DELETE"].contains(&method);
            is_method.then(|| (method.to_owned(), path.to_owned()))
        })
        .collect();
    let in_contract: BTreeSet<(String, String)> = contract_routes()
        .into_iter()
        .map(|(method, path, _, _)| (method, path))
        .collect();
    assert_eq!(in_readme, in_contract);
}
