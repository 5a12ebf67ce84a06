// expect: method `mark_uptodate` is private
//! Only the abstractions mark a folio uptodate, after zeroing or filling it:
//! a backend cannot hand a guest a page with stale host data.
use kernel::mm::folio::LockedFolio;

#[allow(dead_code)]
fn check(folio: &LockedFolio) {
    folio.mark_uptodate();
}
