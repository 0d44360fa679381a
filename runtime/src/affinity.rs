//! Which CPUs the init may use while it creates its namespaces.
//!
//! The init's first syscall, unshare of its network, ipc, uts and mount
//! namespaces, is about half a millisecond of kernel time, and the runtime
//! meanwhile spends about as long making the cgroup (`Plan::init_unshares`).
//! That only overlaps on two CPUs, and the scheduler puts a new child on its
//! parent's CPU: sched_switch tracepoints showed the child either waiting
//! until the runtime blocked, or preempting it and keeping it waiting, while
//! the other CPU idled. So the runtime lets the child run at once, and the
//! child keeps off the runtime's CPU for its unshare, then takes back the
//! mask it inherited. (Also moving it back to the runtime's CPU for the
//! message ping-pong that follows made no measurable difference.)

use nix::sched::{sched_getaffinity, sched_getcpu, sched_setaffinity, sched_yield, CpuSet};
use nix::unistd::Pid;

use crate::error::{Error, Result};

#[derive(Clone, Copy)]
pub struct Spread {
    away: CpuSet,
    inherited: CpuSet,
}

impl Spread {
    /// Taken in the runtime just before the clone. None when the runtime
    /// may use one CPU only, or the kernel would not say which it is on.
    pub fn plan() -> Option<Spread> {
        let inherited = sched_getaffinity(Pid::from_raw(0)).ok()?;
        let mut away = inherited;
        away.unset(sched_getcpu().ok()?).ok()?;
        (away != CpuSet::new()).then_some(Spread { away, inherited })
    }

    /// In the runtime, right after the clone: a child queued behind it on
    /// this CPU runs now and moves away (`leave`); otherwise a no-op.
    pub fn let_init_run(&self) {
        let _ = sched_yield();
    }

    /// In the init, first thing; true if it moved. Only a placement hint:
    /// if the kernel refuses (a caller's seccomp filter may), the init runs
    /// where the scheduler put it and `restore_mask` is not needed.
    pub fn leave(&self) -> bool {
        sched_setaffinity(Pid::from_raw(0), &self.away).is_ok()
    }

    /// In the init, once its namespaces exist, if it left. The container
    /// must run with the mask the runtime was given (a cpuset cgroup it
    /// joins later may narrow it, as with any runtime), so failing that
    /// fails the create.
    pub fn restore_mask(&self) -> Result<()> {
        sched_setaffinity(Pid::from_raw(0), &self.inherited)
            .map_err(|e| Error::sys("sched_setaffinity", "init: the runtime's cpu mask", e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mask() -> CpuSet {
        sched_getaffinity(Pid::from_raw(0)).expect("sched_getaffinity")
    }

    /// In a forked child, so the test thread's own mask is never touched.
    #[test]
    fn leave_moves_off_this_cpu_and_restore_mask_gives_the_mask_back() {
        let Some(spread) = Spread::plan() else {
            eprintln!("skipped: this process may use one CPU only");
            return;
        };
        // SAFETY: the child only makes syscalls and _exits.
        match unsafe { nix::unistd::fork() }.expect("fork") {
            nix::unistd::ForkResult::Child => {
                let before = mask();
                let moved = spread.leave();
                let left = mask();
                let off_parent_cpu = moved
                    && left != before
                    && sched_getcpu().map(|c| left.is_set(c).unwrap_or(false)) == Ok(true);
                let back = spread.restore_mask().is_ok() && mask() == before;
                let code = if !off_parent_cpu {
                    1
                } else if !back {
                    2
                } else {
                    0
                };
                // SAFETY: no destructors of the test harness may run here.
                unsafe { libc::_exit(code) }
            }
            nix::unistd::ForkResult::Parent { child } => {
                let status = nix::sys::wait::waitpid(child, None).expect("waitpid");
                assert_eq!(
                    status,
                    nix::sys::wait::WaitStatus::Exited(child, 0),
                    "1: leave did not narrow the mask, 2: restore_mask did not give it back"
                );
            }
        }
    }
}
