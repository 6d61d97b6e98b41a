//! Kin codes: the signed token (COSE_Sign1 / CWT, EdDSA, base45 behind `KC1:`), its keys and
//! how a warm function keeps them fresh. The use cases around codes are in `usecases::codes`.

pub mod keys;
pub mod refresh;
pub mod token;
