//! The shim's own messages: one timestamped line each on stderr, which is the caller's stderr
//! until the shim detaches and then the --shim-log file (or /dev/null).

use crate::{sys, timefmt};

pub fn warn(msg: &str) {
    let line = format!(
        "{} berth-shim[{}]: {msg}\n",
        timefmt::now_string(),
        sys::getpid()
    );
    let _ = sys::write_all(2, line.as_bytes());
}
