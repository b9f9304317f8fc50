//! Bounded waits: a pollable raced against a monotonic-clock pollable.

use alloc::string::ToString;
use wasip2::clocks::monotonic_clock;
use wasip2::io::poll::{Pollable, poll};
use wasip2::sockets::network::ErrorCode;

use crate::{SocketError, net_error};

/// A point in time after which a wait gives up. `None` means non-blocking (timeout 0).
pub struct Deadline(Option<monotonic_clock::Instant>);

impl Deadline {
    pub fn after(ms: u64) -> Self {
        if ms == 0 {
            Deadline(None)
        } else {
            Deadline(Some(
                monotonic_clock::now().saturating_add(ms.saturating_mul(1_000_000)),
            ))
        }
    }

    /// Wait until `pollable` is ready or the deadline passes (`timeout`, naming `operation`).
    pub fn wait(&self, pollable: &Pollable, operation: &str) -> Result<(), SocketError> {
        let Some(at) = self.0 else {
            return if pollable.ready() {
                Ok(())
            } else {
                Err(SocketError::WouldBlock)
            };
        };
        let timer = monotonic_clock::subscribe_instant(at);
        let ready = poll(&[pollable, &timer]);
        drop(timer);
        if ready.contains(&0) {
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
    let deadline = Deadline::after(ms);
    loop {
        match attempt() {
            Ok(v) => return Ok(v),
            Err(ErrorCode::WouldBlock) => deadline.wait(pollable, operation)?,
            Err(e) => return Err(net_error(e)),
        }
    }
}
