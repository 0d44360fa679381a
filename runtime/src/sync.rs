//! The channel between the runtime (parent) and the container's init: a
//! SOCK_SEQPACKET socketpair carrying one typed message per packet, so every
//! sync point in the create path has a name.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};

use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
pub enum Msg {
    /// Parent → init: id mappings written and cgroup joined; go on. Carries
    /// the state JSON the init passes to createContainer/startContainer
    /// hooks, and the exec fifo's O_PATH fd (SCM_RIGHTS).
    Go(String),
    /// Intermediate → parent: write id mappings for this pid.
    MapIds(i32),
    /// Parent → intermediate: mappings written.
    IdsMapped,
    /// Intermediate → parent: the init was cloned with this (host) pid.
    InitPid(i32),
    /// Init → parent: mounts are done; run prestart and createRuntime hooks.
    MountsReady,
    /// Parent → init: those hooks succeeded.
    HooksDone,
    /// Init → parent: the container is created; it now waits for `start`.
    Created,
    /// Init → parent: creation failed with this one-line error.
    Failed(String),
    /// Parent → init, before `Go`, with the cgroup's v1 `tasks` files
    /// attached (SCM_RIGHTS): their paths, for errors. The init joins by
    /// writing 0 to each (cgroups/join.rs).
    Join(Vec<String>),
}

pub struct Channel {
    fd: OwnedFd,
}

/// Two connected ends: (parent, child). Both are close-on-exec, so the
/// user's program never inherits them.
pub fn pair() -> Result<(Channel, Channel)> {
    let (a, b) = socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .map_err(|e| Error::sys("socketpair", "sync channel", e))?;
    Ok((Channel { fd: a }, Channel { fd: b }))
}

impl Channel {
    pub fn send(&self, msg: &Msg) -> Result<()> {
        let buf = serde_json::to_vec(msg).map_err(|e| Error::Other(e.to_string()))?;
        nix::unistd::write(&self.fd, &buf).map_err(|e| Error::sys("write", "sync channel", e))?;
        Ok(())
    }

    /// `msg` with open files attached (SCM_RIGHTS).
    pub fn send_with_fds(&self, msg: &Msg, fds: &[std::os::fd::RawFd]) -> Result<()> {
        let buf = serde_json::to_vec(msg).map_err(|e| Error::Other(e.to_string()))?;
        crate::sys::send_fds(self.fd.as_fd(), fds, &buf)
            .map_err(|e| Error::sys("sendmsg", "sync channel", e))
    }

    /// `recv`, keeping the files the message carries (at most `sys::MAX_FDS`).
    pub fn recv_with_fds(&self) -> Result<(Option<Msg>, Vec<OwnedFd>)> {
        let mut buf = [0u8; 4096];
        let (n, fds) = crate::sys::recv_fds(self.fd.as_fd(), &mut buf)
            .map_err(|e| Error::sys("recvmsg", "sync channel", e))?;
        if n == 0 {
            return Ok((None, fds));
        }
        let msg = serde_json::from_slice(&buf[..n])
            .map_err(|e| Error::Other(format!("sync channel: bad message: {e}")))?;
        Ok((Some(msg), fds))
    }

    /// The next message; `None` when the other side closed (it died).
    pub fn recv(&self) -> Result<Option<Msg>> {
        let mut buf = [0u8; 4096];
        let n = loop {
            match nix::unistd::read(self.fd.as_raw_fd(), &mut buf) {
                Err(nix::errno::Errno::EINTR) => continue,
                r => break r.map_err(|e| Error::sys("read", "sync channel", e))?,
            }
        };
        if n == 0 {
            return Ok(None);
        }
        serde_json::from_slice(&buf[..n])
            .map(Some)
            .map_err(|e| Error::Other(format!("sync channel: bad message: {e}")))
    }

    /// Wait for `want`; a `Failed` message or a closed channel is an error.
    pub fn expect(&self, want: Msg) -> Result<()> {
        match self.recv()? {
            Some(m) if m == want => Ok(()),
            Some(Msg::Failed(e)) => Err(Error::Init(e)),
            Some(other) => Err(Error::Other(format!(
                "sync channel: expected {want:?}, got {other:?}"
            ))),
            None => Err(Error::Init(format!(
                "container init exited before {want:?}"
            ))),
        }
    }

    pub fn raw_fd(&self) -> i32 {
        self.fd.as_raw_fd()
    }
}
