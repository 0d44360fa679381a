//! containerd-shim-berth-v2: containerd's shim v2 (ttrpc task API, runtime type
//! `io.containerd.berth.v2`). containerd starts one per container (one per pod
//! under Kubernetes); it keeps the container's stdio, reaps its processes,
//! reports their exits as events, and drives a runc-compatible runtime binary
//! (berth by default, the runc options' `BinaryName` when given) for every
//! operation. See docs/shim.md, "containerd shim v2".
#![deny(unsafe_code)]

mod bootstrap;
mod error;
mod metrics;
// Shared with berth-shim.
#[path = "../oom.rs"]
mod oom;
mod oom_notify;
mod process;
mod runtime;
mod service;
mod stdio;
#[allow(unsafe_code)]
mod sys;
mod task;

fn main() {
    containerd_shim::run::<bootstrap::Shim>("io.containerd.berth.v2", None);
}
