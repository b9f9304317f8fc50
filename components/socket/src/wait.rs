//! Bounded waits: a pollable raced against a monotonic-clock pollable.

use alloc::string::ToString;
use wasip2::clocks::monotonic_clock;
use wasip2::io::poll::{Pollable, poll};
use wasip2::sockets::network::ErrorCode;

use crate::{SocketError, net_error};

/// A bound on the time an operation may spend waiting: `ms` from its first wait on. A timeout of
/// 0 means non-blocking. The clock pollable is made at the first wait and kept for the later
/// ones, so an operation that never waits never asks the clock, and one that waits several times
/// shares one deadline.
pub struct Deadline {
    ms: u64,
    timer: Option<Pollable>,
}

impl Deadline {
    pub fn after(ms: u64) -> Self {
        Deadline { ms, timer: None }
    }

    /// Wait until `pollable` is ready or the deadline passes (`timeout`, naming `operation`).
    pub fn wait(&mut self, pollable: &Pollable, operation: &str) -> Result<(), SocketError> {
        if self.ms == 0 {
            return if pollable.ready() {
                Ok(())
            } else {
                Err(SocketError::WouldBlock)
            };
        }
        let ms = self.ms;
        let timer = self.timer.get_or_insert_with(|| {
            monotonic_clock::subscribe_duration(ms.saturating_mul(1_000_000))
        });
        if poll(&[pollable, timer]).contains(&0) {
            Ok(())
        } else {
            Err(SocketError::Timeout(operation.to_string()))
        }
    }
}

/// Call `attempt` until it stops saying `would-block`, waiting on `pollable` in between, for at
/// most `ms` in all.
pub fn wait_ready<T>(
    pollable: &Pollable,
    ms: u64,
    operation: &str,
    mut attempt: impl FnMut() -> Result<T, ErrorCode>,
) -> Result<T, SocketError> {
    let mut deadline = Deadline::after(ms);
    loop {
        match attempt() {
            Ok(v) => return Ok(v),
            Err(ErrorCode::WouldBlock) => deadline.wait(pollable, operation)?,
            Err(e) => return Err(net_error(e)),
        }
    }
}
