//! The use cases: what each function does, in terms of the domain and the ports (the store,
//! the blob store, the face verifier, the key ring). Handlers translate HTTP to and from these.

pub mod access_log;
pub mod authority;
pub mod batch;
pub mod bindings;
pub mod cleanup;
pub mod codes;
pub mod disputes;
pub mod erasure;
pub mod export;
pub mod nucleic;
pub mod paging;
