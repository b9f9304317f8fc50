//! The scenario format: the file's model and parser (`scenario`), its JSON Schema
//! (`schema`), and templates and conditions (`template`).

pub mod env;
#[cfg(test)]
mod fuzz;
pub mod proxy;
pub mod scenario;
pub mod schema;
mod schema_kinds;
pub mod template;
pub mod threshold;
