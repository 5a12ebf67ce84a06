// expect: field `node` of struct `Invalidation` is private|private field
//! Only `Node::invalidate` makes an `Invalidation`: a forged one would let
//! a store free pages its consumers were not told about.
use kernel::memfile::{Invalidation, Node};

#[allow(dead_code)]
fn check(node: &Node) -> Invalidation<'_> {
    Invalidation {
        node,
        start: 0,
        end: 1,
    }
}
