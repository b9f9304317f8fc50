//! Bounded waits: a pollable raced against a monotonic-clock pollable.
//!
//! The clock pollable is shared by every wait of the instance. Making one per wait
//! (`subscribe-duration`, then dropping it) cost about 1 us of the scheduler's 21 us of CPU per
//! keep-alive request, so the instance keeps one timer and a wait reuses it when it fires no later
//! than the wait's own deadline. A timer that fires early only wakes the wait, which looks at
//! the clock and waits again with a timer at its own deadline; none fires late, so no wait
//! outlasts its bound.

use alloc::string::ToString;
use guest_rt::Global;
use wasip2::clocks::monotonic_clock::{self, Instant};
use wasip2::io::poll::{Pollable, poll};
use wasip2::sockets::network::ErrorCode;

use crate::{SocketError, net_error};

/// The instance's timer: a clock pollable and the instant it fires at.
static TIMER: Global<Option<(Pollable, Instant)>> = Global::new(|| None);

/// A bound on the time an operation may spend waiting: `ms` from its first wait on. A timeout of
/// 0 means non-blocking. The clock is read at the first wait, so an operation that never waits
/// never asks it, and one that waits several times has one deadline.
pub struct Deadline {
    ms: u64,
    until: Option<Instant>,
}

impl Deadline {
    pub fn after(ms: u64) -> Self {
        Deadline { ms, until: None }
    }

    /// Wait until `pollable` is ready or the deadline passes (`timeout`, naming `operation`).
    pub fn wait(&mut self, pollable: &Pollable, operation: &str) -> Result<(), SocketError> {
        self.wait_any(&[pollable], operation).map(|_| ())
    }

    /// Wait until one of `pollables` (at most two) is ready (its index) or the deadline passes.
    pub fn wait_any(
        &mut self,
        pollables: &[&Pollable],
        operation: &str,
    ) -> Result<usize, SocketError> {
        if self.ms == 0 {
            return pollables
                .iter()
                .position(|p| p.ready())
                .ok_or(SocketError::WouldBlock);
        }
        let mut now = monotonic_clock::now();
        let ms = self.ms;
        let until = *self
            .until
            .get_or_insert_with(|| now.saturating_add(ms.saturating_mul(1_000_000)));
        let mut timer = TIMER.get();
        while now < until {
            // Reuse the timer if it has not fired yet and fires no later than this deadline.
            let clock = match &mut *timer {
                Some((p, at)) if *at > now && *at <= until => p,
                slot => {
                    &slot
                        .insert((monotonic_clock::subscribe_instant(until), until))
                        .0
                }
            };
            // One or two pollables and the clock, on the stack (this is every wait's path).
            let ready = match *pollables {
                [a] => poll(&[a, clock]),
                [a, b, ..] => poll(&[a, b, clock]),
                [] => poll(&[clock]),
            };
            if let Some(&i) = ready.iter().find(|&&i| (i as usize) < pollables.len()) {
                return Ok(i as usize);
            }
            now = monotonic_clock::now();
        }
        Err(SocketError::Timeout(operation.to_string()))
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

/// Wait up to `ms` (0: no wait) for any of `pollables`: the indices of those ready. One
/// `poll` with a timer of `ms` beside them: it gives the ready ones itself.
pub fn wait_any_of(pollables: &[&Pollable], ms: u64) -> Result<alloc::vec::Vec<u32>, SocketError> {
    let timer = monotonic_clock::subscribe_duration(ms.saturating_mul(1_000_000));
    let mut all: alloc::vec::Vec<&Pollable> = pollables.to_vec();
    all.push(&timer);
    let n = pollables.len() as u32;
    let mut ready = poll(&all);
    drop(all);
    drop(timer);
    ready.retain(|&i| i < n);
    Ok(ready)
}
