//! The scenario format: its types, which serde fills and schemars describes (`schema`, with
//! `schema_http` for an HTTP action's `with`, `schema_kinds` for the UDP and WebSocket withs and
//! the servers, and `schema_fields` for what a mapping may hold), the reader that judges what they say into the run's model (`scenario`), and
//! templates and conditions (`template`).

pub mod env;
#[cfg(test)]
mod fuzz;
pub mod proxy;
pub mod scenario;
pub mod schema;
mod schema_fields;
mod schema_http;
mod schema_kinds;
pub mod template;
pub mod threshold;
