//! kincode's shared library: the pure domain, the ports and their AWS adapters, and the HTTP
//! glue every function uses.

pub mod authority;
pub mod batch;
pub mod bindings;
pub mod blobs;
pub mod cleanup;
pub mod codes;
pub mod config;
pub mod crypto;
pub mod domain;
pub mod entry;
pub mod error;
pub mod face;
pub mod http;
pub mod imaging;
pub mod outbound;
pub mod secrets;
pub mod services;
pub mod store;
pub mod telemetry;
pub mod testing;
