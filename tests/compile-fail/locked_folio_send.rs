// expect: cannot be sent between threads safely
//! A folio lock is released by the thread that took it: `LockedFolio` is
//! not `Send`.
use kernel::mm::folio::LockedFolio;

fn assert_send<T: Send>() {}

#[allow(dead_code)]
fn check() {
    assert_send::<LockedFolio>();
}
