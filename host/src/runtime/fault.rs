//! Fault injection for the tests (debug builds only): `SCHEDULER_TEST_TRAP_GROW_PAST=BYTES`
//! makes a memory of a user's instance that grows past BYTES trap, as a fault in the guest
//! would. A release build has none of this.

/// A limiter that lets memories grow up to a size and traps past it.
#[derive(Default)]
pub struct TrapPast(Option<usize>);

impl TrapPast {
    /// As the environment asks (no limit without the variable).
    pub fn from_env() -> Self {
        TrapPast(
            std::env::var("SCHEDULER_TEST_TRAP_GROW_PAST")
                .ok()
                .and_then(|v| v.parse().ok()),
        )
    }

    pub fn is_on(&self) -> bool {
        self.0.is_some()
    }
}

impl wasmtime::ResourceLimiter for TrapPast {
    fn memory_growing(
        &mut self,
        _: usize,
        desired: usize,
        _: Option<usize>,
    ) -> wasmtime::Result<bool> {
        match self.0 {
            Some(limit) if desired > limit => Err(wasmtime::format_err!(
                "fault injected: a memory grew past {limit} bytes"
            )),
            _ => Ok(true),
        }
    }

    fn table_growing(&mut self, _: usize, _: usize, _: Option<usize>) -> wasmtime::Result<bool> {
        Ok(true)
    }
}
