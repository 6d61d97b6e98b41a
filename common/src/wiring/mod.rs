//! What a function's `main.rs` wires: its configuration (`config`), the secrets it names
//! (`secrets`), the clients and services built from both at cold start (`services`), logging
//! (`telemetry`) and the Lambda entry point that runs a handler (`entry`).

pub mod config;
pub mod entry;
pub mod secrets;
pub mod services;
pub mod telemetry;
