//! The cost of what a person sees: the phone's bare QR image (budget: under 1 ms with the token
//! signing), the kin code drawn whole for `Accept: image/png` (QR, mark, colour, name, time),
//! and the printable offline card (budget: 20 ms, 64 MB peak RSS).
//! `cargo bench -p kincode-common --bench imaging`.

use std::hint::black_box;

use chrono::{Duration, TimeZone, Utc};
use criterion::{criterion_group, criterion_main, Criterion};
use kincode_common::codes::keys::KeyRing;
use kincode_common::codes::token;
use kincode_common::domain::binding::BindingId;
use kincode_common::domain::code::{CodeClaims, CodeKind};
use kincode_common::domain::colour::HealthColour;
use kincode_common::domain::relationship::Relationship;
use kincode_common::imaging::card::{offline_card_png, OfflineCard};
use kincode_common::imaging::kin_code::{kin_code_png, KinCodeImage};
use kincode_common::imaging::qr::qr_png;

fn imaging_benches(c: &mut Criterion) {
    let keys = KeyRing::generate("k2026a");
    let now = Utc.with_ymd_and_hms(2026, 11, 28, 4, 0, 0).unwrap();
    let claims = CodeClaims::issue(
        BindingId::random(),
        CodeKind::KinOffline,
        HealthColour::Yellow,
        now,
    );
    let text = token::encode(&claims, keys.signer(chrono::Utc::now()));

    c.bench_function("imaging/qr_png", |b| {
        b.iter(|| qr_png(black_box(&text), HealthColour::Yellow).unwrap())
    });
    c.bench_function("imaging/token+qr_png", |b| {
        b.iter(|| {
            let text = token::encode(black_box(&claims), keys.signer(chrono::Utc::now()));
            qr_png(&text, HealthColour::Yellow).unwrap()
        })
    });

    let image = KinCodeImage {
        colour: HealthColour::Yellow,
        token: &text,
        masked_name: "**明",
        relationship_label: Relationship::Child.label(),
        drawn_at: now,
    };
    c.bench_function("imaging/kin_code_png", |b| {
        b.iter(|| kin_code_png(black_box(&image)).unwrap())
    });

    let card = OfflineCard {
        colour: HealthColour::Yellow,
        token: &text,
        masked_name: "**明",
        relationship_label: Relationship::Grandparent.label(),
        generated_at: now,
        valid_until: now + Duration::days(7),
    };
    c.bench_function("imaging/offline_card_png", |b| {
        b.iter(|| offline_card_png(black_box(&card)).unwrap())
    });
}

criterion_group!(benches, imaging_benches);
criterion_main!(benches);
