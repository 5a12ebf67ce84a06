// expect: borrowed data escapes outside of closure
//! An invalidation ends when its closure returns: its proof cannot be kept
//! past it (a kept guard could be leaked and never end).
use kernel::memfile::{Invalidation, Node};

#[allow(dead_code)]
fn check<'a>(node: &'a Node, keep: &mut Option<&'a Invalidation<'a>>) {
    node.invalidate(0, 1, |inv| *keep = Some(inv));
}
