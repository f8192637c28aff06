//! The load and fault suites' short forms. They get a test binary of their own because each
//! fills both cores for a minute or more: cargo runs test binaries one after another, so they
//! never share the machine with a browser test's 90 s wait, and the lock below keeps the two
//! from overlapping each other when the harness runs tests in parallel.

mod faults;
mod load;

use std::sync::{Mutex, MutexGuard};

static MACHINE: Mutex<()> = Mutex::new(());

/// Held for the whole of a stress test.
fn whole_machine() -> MutexGuard<'static, ()> {
    // A failed test poisons the lock; the next one may still run.
    MACHINE.lock().unwrap_or_else(|e| e.into_inner())
}
