//! Least privilege: each function's DynamoDB policy in `template.yaml` grants exactly the
//! actions its use cases were seen to need (recorded by an SDK interceptor on the local
//! stack, transactions counted by their items' actions) — no more, no fewer.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{Datelike, Duration, NaiveDate, Utc};
use kincode_common::adapters::face::LocalFaceSimulator;
use kincode_common::domain::binding::GuardianId;
use kincode_common::domain::china_time::china_date;
use kincode_common::domain::code::ScanPurpose;
use kincode_common::store::{ActionContext, CleanupBudget};
use kincode_common::usecases::access_log;
use kincode_common::usecases::authority;
use kincode_common::usecases::bindings::{self, BindRequest, CompleteRequest, VerificationStart};
use kincode_common::usecases::cleanup;
use kincode_common::usecases::codes::{publish, scan, sheet, show};
use kincode_common::usecases::export;
use kincode_tests::*;
use serde_json::json;

fn granted(template: &Template, function: &str) -> BTreeSet<String> {
    let mut actions = BTreeSet::new();
    for policy in template.resource(function)["Properties"]["Policies"]
        .as_sequence()
        .unwrap()
    {
        for statement in policy["Statement"].as_sequence().unwrap() {
            for action in statement["Action"].as_sequence().unwrap() {
                let action = action.as_str().unwrap();
                if action.starts_with("dynamodb:") {
                    actions.insert(action.to_owned());
                }
            }
        }
    }
    actions
}

#[tokio::test]
async fn every_function_is_granted_exactly_the_dynamodb_actions_it_uses() {
    let (services, calls) = counted_services().await;
    let blobs = fresh_bucket(&services).await;
    let keys = test_key_ring();
    let store = &services.store;
    let face = LocalFaceSimulator;
    let guardian = GuardianId::parse("user-iam").unwrap();
    let t0 = Utc::now();
    let at = |t| ActionContext {
        request_id: "iam",
        at: t,
    };
    let mut used: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    let request = |id: &str| BindRequest {
        name: Some("王小明".into()),
        id_number: Some(id.into()),
        relationship: Some("child".into()),
        consent: Some(true),
    };
    calls.take_actions();

    // bind, and a retry that meets its own binding
    let face_id = resident_id_aged(12, t0, 1);
    let key = kincode_common::domain::binding::IdempotencyKey::parse("iam-key-0001").unwrap();
    let binding = bindings::bind(store, &guardian, request(&face_id), Some(&key), at(t0))
        .await
        .unwrap();
    bindings::bind(store, &guardian, request(&face_id), Some(&key), at(t0))
        .await
        .unwrap();
    used.insert("BindFunction", calls.take_actions());

    // A five-year-old bound with the pledge, to verify again by face at 7.
    let pledge_child = bindings::bind(
        store,
        &guardian,
        request(&resident_id_aged(5, t0, 3)),
        None,
        at(t0),
    )
    .await
    .unwrap();
    used.get_mut("BindFunction")
        .unwrap()
        .extend(calls.take_actions());

    // verify: a failed face attempt, a passing one, a pledge, and face verification at 7
    for outcome in ["fail", "pass"] {
        let VerificationStart::Face { certify_id, .. } =
            bindings::start_verification(store, &face, &guardian, &binding.id, at(t0))
                .await
                .unwrap()
        else {
            panic!("face")
        };
        let complete = CompleteRequest {
            certify_id: Some(certify_id),
            evidence: json!({ "simulated_outcome": outcome }),
            pledge_version: None,
            accepted: None,
        };
        let _ =
            bindings::complete_verification(store, &face, &guardian, &binding.id, complete, at(t0))
                .await;
    }
    let seven = pledge_child.transitions.face_due_at.unwrap();
    for now in [t0, seven] {
        let started =
            bindings::start_verification(store, &face, &guardian, &pledge_child.id, at(now))
                .await
                .unwrap();
        let complete = match started {
            VerificationStart::Pledge { version, .. } => CompleteRequest {
                certify_id: None,
                evidence: json!(null),
                pledge_version: Some(version.into()),
                accepted: Some(true),
            },
            VerificationStart::Face { certify_id, .. } => CompleteRequest {
                certify_id: Some(certify_id),
                evidence: json!({ "simulated_outcome": "pass" }),
                pledge_version: None,
                accepted: None,
            },
        };
        bindings::complete_verification(
            store,
            &face,
            &guardian,
            &pledge_child.id,
            complete,
            at(now),
        )
        .await
        .unwrap();
    }
    used.insert("VerifyFunction", calls.take_actions());

    bindings::list(store, &guardian, t0).await.unwrap();
    used.insert("ListFunction", calls.take_actions());

    let code = show::online_code(store, &keys, &guardian, &binding.id, at(t0))
        .await
        .unwrap();
    used.insert("RenderFunction", calls.take_actions());

    show::issue_offline_card(store, &blobs, &keys, &guardian, &binding.id, at(t0))
        .await
        .unwrap();
    show::latest_offline_card(store, &blobs, &guardian, &binding.id, at(t0))
        .await
        .unwrap();
    let sheet_key =
        kincode_common::domain::binding::IdempotencyKey::parse("iam-sheet-0001").unwrap();
    for _ in 0..2 {
        sheet::issue_household_sheet(store, &blobs, &keys, &guardian, Some(&sheet_key), at(t0))
            .await
            .unwrap();
    }
    used.insert("OfflineFunction", calls.take_actions());

    let site = test_site();
    scan::scan_at_checkpoint(
        store,
        &keys,
        &code.token,
        ScanPurpose::VenueEntry,
        Some(&site),
        at(t0),
    )
    .await
    .unwrap();
    used.insert("ScanFunction", calls.take_actions());

    publish::published_keys(store, &keys, t0).await.unwrap();
    used.insert("KeysFunction", calls.take_actions());

    let rows = json!({ "rows": [
        { "id_number": face_id, "flag": "fever_clinic", "effective_at": t0 },
        { "id_number": face_id, "flag": "fever_clinic", "clear": true },
    ]});
    authority::apply_flags(
        store,
        "authority",
        serde_json::from_value(rows).unwrap(),
        at(t0),
    )
    .await
    .unwrap();
    used.insert("RiskFlagsFunction", calls.take_actions());

    // testing: a registration, a retry of it, a lab row, a page of results
    use kincode_common::usecases::nucleic::{lab, results, samples};
    let tube = fresh_tube();
    let sample_key =
        kincode_common::domain::binding::IdempotencyKey::parse("iam-sample-1").unwrap();
    for _ in 0..2 {
        let code = show::online_code(store, &keys, &guardian, &binding.id, at(t0))
            .await
            .unwrap();
        calls.take_actions();
        let request = samples::SampleRequest {
            code: Some(code.token),
            tube_id: Some(tube.clone()),
            tube_kind: Some("pooled_10".into()),
        };
        let checkpoint = samples::Checkpoint {
            actor: "site-iam",
            site: &site,
        };
        samples::register(store, &keys, checkpoint, request, Some(&sample_key), at(t0))
            .await
            .unwrap();
        used.entry("SamplesFunction")
            .or_default()
            .extend(calls.take_actions());
    }
    let rows = json!({ "rows": [{ "tube_id": tube, "result": "negative", "reported_at": t0 }] });
    lab::apply_results(
        store,
        "lab-iam",
        serde_json::from_value(rows).unwrap(),
        at(t0),
    )
    .await
    .unwrap();
    used.insert("LabResultsFunction", calls.take_actions());
    results::results(store, &guardian, &binding.id, 20, None, at(t0))
        .await
        .unwrap();
    used.insert("ResultsFunction", calls.take_actions());
    access_log::access_log(store, &guardian, &binding.id, 20, None, at(t0))
        .await
        .unwrap();
    used.insert("AccessLogFunction", calls.take_actions());
    export::export(store, &guardian, &binding.id, at(t0))
        .await
        .unwrap();
    used.insert("ExportFunction", calls.take_actions());

    // co-guardians: the list, reports, the reporter's reports; the authority: its queue, an
    // uphold of an active binding, one of a binding already unbound, and a dismissal
    use kincode_common::usecases::disputes::{self, ReportRequest, ResolveRequest};
    let co_guardian = |i: usize| format!("user-iam-co-{i}");
    let report = |i: usize| ReportRequest {
        guardian: Some(
            store
                .keys()
                .guardian_handle(&binding.relative_key, &co_guardian(i)),
        ),
        reason: Some("not_family".into()),
        details: Some("不认识".into()),
    };
    let resolve = |decision: &str| ResolveRequest {
        decision: Some(decision.into()),
    };
    let mut co_guardians = Vec::new();
    for i in 0..2 {
        co_guardians.push(active_relative_with(&services, &co_guardian(i), &face_id, t0).await);
    }
    calls.take_actions();
    disputes::co_guardians(store, &guardian, &binding.id)
        .await
        .unwrap();
    let mut opened = Vec::new();
    for i in 0..2 {
        let dispute = disputes::report(store, &guardian, &binding.id, report(i), at(t0))
            .await
            .unwrap();
        opened.push(dispute);
    }
    disputes::my_disputes(store, &guardian, 20, None)
        .await
        .unwrap();
    used.insert("CoGuardiansFunction", calls.take_actions());
    let later = t0 + Duration::hours(25);
    let gone = &co_guardians[1];
    bindings::unbind(store, &gone.guardian, &gone.id, at(later))
        .await
        .unwrap();
    calls.take_actions();
    disputes::open_disputes(store, 20, None).await.unwrap();
    for dispute in &opened {
        disputes::resolve(
            store,
            "authority",
            &dispute.id,
            resolve("uphold"),
            at(later),
        )
        .await
        .unwrap();
    }
    used.insert("AuthorityDisputesFunction", calls.take_actions());
    active_relative_with(&services, &co_guardian(2), &face_id, t0).await;
    calls.take_actions();
    let dismissed = disputes::report(store, &guardian, &binding.id, report(2), at(t0))
        .await
        .unwrap();
    used.entry("CoGuardiansFunction")
        .or_default()
        .extend(calls.take_actions());
    disputes::resolve(
        store,
        "authority",
        &dismissed.id,
        resolve("dismiss"),
        at(later),
    )
    .await
    .unwrap();
    used.entry("AuthorityDisputesFunction")
        .or_default()
        .extend(calls.take_actions());

    // unbind an active binding with a card, then repeat it
    let later = t0 + Duration::hours(25);
    bindings::unbind(store, &guardian, &binding.id, at(later))
        .await
        .unwrap();
    bindings::unbind(store, &guardian, &binding.id, at(later))
        .await
        .unwrap();
    used.insert("UnbindFunction", calls.take_actions());

    // cleanup: a stale pending binding, the expired cards (alone and the sheet's), the
    // expired sheet, revocations, quotas, and a child's binding ended at 17 (a few days from now)
    bind_relative(&services, "user-iam-2", &resident_id_aged(70, t0, 2), t0)
        .await
        .unwrap();
    let seventeenth = china_date(t0) + Duration::days(5);
    let birth = NaiveDate::from_ymd_opt(
        seventeenth.year() - 17,
        seventeenth.month(),
        seventeenth.day().min(28),
    )
    .unwrap();
    active_relative_with(&services, "user-iam-3", &resident_id_born(birth, 4), t0).await;
    calls.take_actions();
    let budget = CleanupBudget {
        max_items: 1000,
        max_duration: std::time::Duration::from_secs(60),
    };
    let report = cleanup::run(store, &blobs, budget, at(t0 + Duration::days(9)))
        .await
        .unwrap();
    assert!(
        report.pending_bindings_released == 1
            && report.offline_cards_deleted == 3
            && report.household_sheets_deleted == 1
            && report.bindings_aged_out == 1,
        "{report:?}"
    );
    // and, 30 days after the unbind, the person nobody holds any more
    // (a bounded run resumes where it stopped, as the hourly schedule does: under a loaded
    // machine the walk of those days may take more than one run)
    let mut decided = 0;
    for _ in 0..10 {
        let report = cleanup::run(store, &blobs, budget, at(later + Duration::days(31)))
            .await
            .unwrap();
        // erased, or found held again by a later binding of the same person
        decided += report.people_erased + report.skipped;
        if report.complete {
            break;
        }
    }
    assert!(decided >= 1, "the person's erasure was decided");
    used.insert("CleanupFunction", calls.take_actions());

    let template = Template::load(&repo_root().join("template.yaml")).unwrap();
    let functions: BTreeSet<String> = template.functions().into_iter().map(|(f, _)| f).collect();
    assert_eq!(
        functions,
        used.keys().map(|f| f.to_string()).collect(),
        "every function's calls are exercised here"
    );
    for (function, actions) in &used {
        assert_eq!(&granted(&template, function), actions, "{function}");
    }
}
