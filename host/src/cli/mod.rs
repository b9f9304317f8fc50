//! The command line: its flags (`args`), what commands end with (`finish`), `exec`, and the
//! demo's own target.

pub mod args;
pub mod commands;
pub mod exec;
pub mod finish;
pub mod serve;
pub mod target;
pub mod workers;
