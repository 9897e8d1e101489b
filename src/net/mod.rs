//! Outbound HTTP shared by every component that calls a remote service (the network sinks, the
//! Anthropic source, `connectors install`): the client with its TLS settings, request settings
//! (timeouts, concurrency, compression), backoff and `Retry-After`.

pub mod http;
pub mod retry;
