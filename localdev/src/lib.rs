//! Local development for kincode, without Docker: the template as the one source of truth,
//! tables provisioned from it, and a local API gateway that serves the real function
//! binaries through AWS's Lambda Runtime Interface Emulator, and runs their schedules on demand.

pub mod alipay;
pub mod apigw;
pub mod auth;
pub mod client;
pub mod emulator;
pub mod gateway;
pub mod local;
pub mod provision;
pub mod rotate;
pub mod scheduler;
pub mod template;
