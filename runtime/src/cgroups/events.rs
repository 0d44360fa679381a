//! `berth events`: runc's JSON lines, `{"type":"stats","id":...,"data":{...}}`
//! every interval and `{"type":"oom","id":...}` as OOM kills happen.

use std::io::Write;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::{Cgroup, CgroupError, Stats};

#[derive(Serialize)]
struct Event<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<&'a Stats>,
}

fn emit(out: &mut dyn Write, kind: &str, id: &str, data: Option<&Stats>) -> std::io::Result<()> {
    let line = serde_json::to_string(&Event { kind, id, data }).map_err(std::io::Error::other)?;
    writeln!(out, "{line}")?;
    out.flush()
}

fn io_err(e: std::io::Error) -> CgroupError {
    CgroupError::Manager {
        path: "<stdout>".into(),
        msg: e.to_string(),
    }
}

/// One stats event (`events --stats`).
pub fn print_stats(cg: &Cgroup, id: &str, out: &mut dyn Write) -> Result<(), CgroupError> {
    let stats = cg.stats()?;
    emit(out, "stats", id, Some(&stats)).map_err(io_err)
}

/// Stats every `interval` and OOM events as they come, while `alive()` says
/// the container still runs.
pub fn watch(
    cg: &Cgroup,
    id: &str,
    interval: Duration,
    out: &mut dyn Write,
    mut alive: impl FnMut() -> bool,
) -> Result<(), CgroupError> {
    // Without the memory controller there are no OOM events, only stats.
    let mut oom = cg.oom_events().ok();
    let mut next = Instant::now();
    while alive() {
        let now = Instant::now();
        if now >= next {
            print_stats(cg, id, out)?;
            next = now + interval;
        }
        let wait = next.saturating_duration_since(Instant::now());
        let n = match &mut oom {
            Some(o) => o.wait(Some(wait))?,
            None => {
                std::thread::sleep(wait);
                0
            }
        };
        for _ in 0..n {
            emit(out, "oom", id, None).map_err(io_err)?;
        }
    }
    Ok(())
}
