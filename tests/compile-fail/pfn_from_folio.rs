// expect: method `into_page_pfn` is private
//! A page's pfn reaches KVM only from a locked folio of the faulting file:
//! a backend cannot make a pfn out of a folio itself.
use kernel::mm::folio::LockedFolio;

#[allow(dead_code)]
fn check(folio: LockedFolio) -> u64 {
    folio.into_page_pfn(0).unwrap_or(0)
}
