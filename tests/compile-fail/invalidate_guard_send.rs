// expect: cannot be sent between threads safely
//! `invalidate_lock` is an rwsem: its guard is not `Send`.
use kernel::mm::filemap::InvalidateSharedGuard;

fn assert_send<T: Send>() {}

#[allow(dead_code)]
fn check() {
    assert_send::<InvalidateSharedGuard<'static>>();
}
