//! The measuring tools' shared parts: the DynamoDB capacity meter (`capacity`: what each call
//! consumes, by DynamoDB's published rules, on the local stack) and the capacity model of a
//! testing round built on it (`capacity_model`). The drivers are in `src/bin/`.

pub mod capacity;
pub mod capacity_model;
