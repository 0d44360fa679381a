//! The runtime's verbs, one file each, in lifecycle order.

pub mod create;
pub mod delete;
pub mod exec;
pub mod exec_process;
pub mod foreground;
pub mod kill;
pub mod list;
pub mod run;
pub mod start;
pub mod wait;

use std::path::PathBuf;

/// Options every verb shares (runc's global flags).
#[derive(Debug, Clone)]
pub struct Global {
    pub root: PathBuf,
    pub systemd_cgroup: bool,
}
