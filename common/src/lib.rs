//! kincode's shared library, in layers: `usecases` (what each function does) over `store`
//! and `adapters` (DynamoDB; S3, Secrets Manager, Alipay, HTTPS) over the pure `domain`;
//! `codes` (the signed token and its keys), `imaging`, `crypto`; `answers`, the shapes of what
//! the functions answer; `error` and `http`, the glue every handler uses; `wiring`, what every
//! `main.rs` calls.

pub mod adapters;
pub mod answers;
pub mod codes;
pub mod crypto;
pub mod domain;
pub mod error;
pub mod http;
pub mod imaging;
pub mod store;
pub mod usecases;
pub mod wiring;
