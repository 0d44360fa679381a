//! Harness for berth's runtime-agnostic OCI conformance suite.
//!
//! The suite only talks to the runtime under test through its runc-compatible CLI; every
//! check of the container's environment is made from inside the container (busybox reading
//! `/proc/self/*`) so the same tests hold for berth, runc, crun or youki.

pub mod bundle;
pub mod error;
pub mod hostenv;
pub mod inside;
pub mod leftovers;
pub mod reaper;
pub mod runtime;
pub mod spec;
pub mod tempdir;

pub use bundle::Bundle;
pub use error::{Error, Result};
pub use runtime::{Output, Runtime};
