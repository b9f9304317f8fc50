//! What only the command line uses: the demo's own target.

pub mod target;
