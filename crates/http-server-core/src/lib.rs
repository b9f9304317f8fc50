//! The HTTP/1.1 server of the http-server component, sans-io: a connection is fed the bytes
//! that came in and gives back the bytes to send (`conn::Conn`), answering from a route table
//! (`route`) through middleware (`config::Middleware`). Time comes from the caller, so the
//! same code runs in the component and in native tests.

#![cfg_attr(not(feature = "std"), no_std)]

extern crate alloc;

pub mod config;
pub mod conn;
pub mod files;
pub mod request;
pub mod response;
pub mod route;

pub use config::Config;
pub use conn::{Conn, Output};
