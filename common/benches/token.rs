//! The cost of a kin code token: signing (every code issued or refreshed) and checking (every
//! scan). `cargo bench -p kincode-common --bench token`.

use std::hint::black_box;

use chrono::{TimeZone, Utc};
use criterion::{criterion_group, criterion_main, Criterion};
use kincode_common::codes::keys::KeyRing;
use kincode_common::codes::token;
use kincode_common::domain::binding::BindingId;
use kincode_common::domain::code::{CodeClaims, CodeKind};
use kincode_common::domain::colour::HealthColour;

fn token_benches(c: &mut Criterion) {
    let keys = KeyRing::generate("k2026a");
    let now = Utc.with_ymd_and_hms(2026, 11, 28, 4, 0, 0).unwrap();
    let claims = CodeClaims::issue(
        BindingId::random(),
        CodeKind::KinOffline,
        HealthColour::Green,
        now,
    );
    let text = token::encode(&claims, keys.signer(chrono::Utc::now()));

    c.bench_function("token/encode", |b| {
        b.iter(|| token::encode(black_box(&claims), keys.signer(chrono::Utc::now())))
    });
    c.bench_function("token/decode", |b| {
        b.iter(|| token::decode(black_box(&text), &keys, now))
    });
    c.bench_function("token/encode+decode", |b| {
        b.iter(|| {
            token::decode(
                &token::encode(black_box(&claims), keys.signer(chrono::Utc::now())),
                &keys,
                now,
            )
        })
    });
}

criterion_group!(benches, token_benches);
criterion_main!(benches);
