// SPDX-License-Identifier: GPL-2.0

//! Owned references to reference-counted kernel objects: [`ARef`] and [`AlwaysRefCounted`].
//!
//! Mainline keeps them here; 6.12 defines them in [`crate::types`]. This module gives them
//! mainline's path, so that code written against it builds on both.

pub use crate::types::{ARef, AlwaysRefCounted};
