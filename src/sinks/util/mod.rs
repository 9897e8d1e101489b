//! Shared sink machinery: batching settings. (HTTP client, TLS and retry timing live in
//! `crate::net`, which sources use too.)

pub mod batch;
