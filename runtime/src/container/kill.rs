//! `kill`: a signal to the init, or with `--all` to every process of the
//! container's cgroup.

use nix::sys::signal::Signal;
use nix::unistd::Pid;

use super::Global;
use crate::cgroups::Cgroup;
use crate::error::{Error, Result};
use crate::state::{StateDir, Status};

pub fn kill(g: &Global, id: &str, signal: Signal, all: bool) -> Result<()> {
    let dir = StateDir::open(&g.root, id)?;
    let state = dir.load()?;
    if state.status == Status::Stopped {
        return Err(Error::NotRunning {
            id: id.into(),
            op: "kill",
        });
    }
    // Through a pidfd, opened first: the pid cannot be reused between the
    // status check and the signal.
    let pidfd = crate::sys::pidfd_open(state.pid)
        .map_err(|e| Error::io("pidfd_open", format!("pid {}", state.pid), e))?;
    crate::sys::pidfd_send_signal(&pidfd, signal as i32)
        .map_err(|e| Error::sys("pidfd_send_signal", format!("pid {}", state.pid), e))?;
    if all {
        let Some(record) = &state.cgroup else {
            return Err(Error::Other(format!(
                "container {id} has no cgroup: --all cannot find its processes"
            )));
        };
        Cgroup::open(record)?.kill_all(signal)?;
    }
    Ok(())
}

/// Parse `KILL`, `SIGKILL`, `9`, case-insensitively.
pub fn parse_signal(s: &str) -> Result<Signal> {
    if let Ok(n) = s.parse::<i32>() {
        return Signal::try_from(n).map_err(|_| Error::Other(format!("unknown signal {s:?}")));
    }
    let up = s.to_ascii_uppercase();
    let name = if up.starts_with("SIG") {
        up
    } else {
        format!("SIG{up}")
    };
    name.parse::<Signal>()
        .map_err(|_| Error::Other(format!("unknown signal {s:?}")))
}

/// Kill everything in the container and wait until the init is gone.
pub fn kill_all_and_wait(state: &crate::state::State, cg: Option<&Cgroup>) -> Result<()> {
    let pidfd = crate::sys::pidfd_open(state.pid).ok();
    if state.init_alive() {
        if let Some(fd) = &pidfd {
            let _ = crate::sys::pidfd_send_signal(fd, Signal::SIGKILL as i32);
        }
    }
    if let Some(cg) = cg {
        // Best effort: the init's pidfd below is what we wait on.
        let _ = cg.kill_all(Signal::SIGKILL);
    }
    if let Some(fd) = pidfd {
        super::wait::wait_pidfd(&fd, Pid::from_raw(state.pid))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_signal_forms() {
        for s in ["KILL", "SIGKILL", "kill", "9"] {
            assert_eq!(parse_signal(s).unwrap(), Signal::SIGKILL, "{s}");
        }
        assert_eq!(parse_signal("term").unwrap(), Signal::SIGTERM);
        assert!(parse_signal("NOPE").is_err());
        assert!(parse_signal("99").is_err());
    }
}
