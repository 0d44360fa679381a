//! Bringing the init process into existence, parent side.
//!
//! Common case: one clone(2) with every new namespace, straight from the
//! runtime. When a pid or user namespace is joined, or a time namespace is
//! created, those only apply to children of the process that enters them,
//! so an intermediate process enters them first and clones the init.
//!
//! Either way the parent then writes the id mappings (for the process that
//! created the user namespace) and the init waits for `Go` before it does
//! anything that needs them.

use std::convert::Infallible;

use nix::sched::{unshare, CloneFlags};
use nix::unistd::{getpid, Pid};
use oci_spec::runtime::LinuxNamespaceType as Ns;

use crate::error::{Error, Result};
use crate::namespaces::{self, Plan};
use crate::sync::{self, Channel, Msg};

/// Clone the init. In the child, `init` runs and never returns; the parent
/// gets the init's pid and its end of the channel.
#[allow(unreachable_code)]
///
/// `late`: new namespaces left out of the clone; the init unshares them
/// (direct case only, `Plan::init_unshares`).
pub fn spawn(
    plan: &Plan,
    late: CloneFlags,
    init: impl FnOnce(Channel) -> Infallible,
) -> Result<(Pid, Channel)> {
    // Before anything enters the container: see selfexe.rs.
    // A rootless runtime writes the id maps of its child through
    // /proc/PID/{uid,gid}_map, which become root-owned once the child is
    // non-dumpable: then the init protects itself after the maps are
    // written (its first step after `Go`), as runc does.
    let rootless_maps = !nix::unistd::geteuid().is_root() && plan.creates(Ns::User);
    if !rootless_maps {
        crate::selfexe::protect()?;
    }
    let (parent, child) = sync::pair()?;
    if !plan.needs_intermediate() {
        let flags = (plan.clone_flags() - late).bits();
        return match crate::sys::clone_fork(flags).map_err(|e| Error::sys("clone", "init", e))? {
            None => {
                drop(parent);
                match init(child) {}
            }
            Some(pid) => {
                drop(child);
                if plan.creates(Ns::User) {
                    namespaces::write_id_mappings(pid.as_raw(), plan)?;
                }
                Ok((pid, parent))
            }
        };
    }
    // SAFETY: the runtime is single-threaded; the child only runs our code.
    match unsafe { nix::unistd::fork() }.map_err(|e| Error::sys("fork", "intermediate", e))? {
        nix::unistd::ForkResult::Child => {
            drop(parent);
            intermediate(plan, child, init)
        }
        nix::unistd::ForkResult::Parent { child: mid } => {
            drop(child);
            let pid = serve_intermediate(plan, &parent, mid);
            // The intermediate exits once the init exists (or on failure).
            let _ = nix::sys::wait::waitpid(mid, None);
            Ok((pid?, parent))
        }
    }
}

fn serve_intermediate(plan: &Plan, chan: &Channel, mid: Pid) -> Result<Pid> {
    loop {
        match chan.recv()? {
            Some(Msg::MapIds(pid)) if pid == mid.as_raw() => {
                namespaces::write_id_mappings(pid, plan)?;
                chan.send(&Msg::IdsMapped)?;
            }
            Some(Msg::InitPid(pid)) => return Ok(Pid::from_raw(pid)),
            Some(Msg::Failed(e)) => return Err(Error::Init(e)),
            Some(other) => return Err(Error::Other(format!("sync channel: unexpected {other:?}"))),
            None => return Err(Error::Init("intermediate process exited early".into())),
        }
    }
}

#[allow(unreachable_code)]
fn intermediate(plan: &Plan, chan: Channel, init: impl FnOnce(Channel) -> Infallible) -> ! {
    let r = (|| -> Result<Option<Pid>> {
        namespaces::join(plan, &[Ns::User, Ns::Pid, Ns::Time])?;
        if plan.creates(Ns::User) {
            unshare(CloneFlags::CLONE_NEWUSER)
                .map_err(|e| Error::sys("unshare", "user namespace", e))?;
            chan.send(&Msg::MapIds(getpid().as_raw()))?;
            chan.expect(Msg::IdsMapped)?;
        }
        if plan.creates(Ns::Time) {
            unshare(namespaces::flag(Ns::Time))
                .map_err(|e| Error::sys("unshare", "time namespace", e))?;
            namespaces::write_time_offsets(plan)?;
        }
        crate::sys::clone_fork(plan.clone_flags().bits())
            .map_err(|e| Error::sys("clone", "init", e))
    })();
    match r {
        Ok(None) => match init(chan) {},
        Ok(Some(pid)) => {
            let _ = chan.send(&Msg::InitPid(pid.as_raw()));
            // SAFETY: _exit skips atexit handlers and destructors that belong
            // to the parent's copy of the process state.
            unsafe { libc::_exit(0) }
        }
        Err(e) => {
            let _ = chan.send(&Msg::Failed(e.to_string()));
            // SAFETY: as above.
            unsafe { libc::_exit(1) }
        }
    }
}
