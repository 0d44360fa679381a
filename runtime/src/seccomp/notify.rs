//! Handing the SCMP_ACT_NOTIFY listener fd to the seccomp agent.
//!
//! Wire format (runc's `sendContainerProcessState`, crun's
//! `seccomp_notify_fd` agents expect the same): connect a SOCK_STREAM unix
//! socket to `listenerPath`, then one sendmsg carrying the JSON of the
//! runtime-spec `ContainerProcessState` as data and the listener fd as
//! SCM_RIGHTS. `fds` names the passed descriptors by position:
//!
//! ```json
//! {"ociVersion":"1.2.0","fds":["seccompFd"],"pid":1234,"metadata":"...",
//!  "state":{"ociVersion":"1.2.0","id":"c1","status":"creating","pid":1234,
//!           "bundle":"/b","annotations":{}}}
//! ```

use std::io::IoSlice;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::Path;

use nix::sys::socket::{
    connect, sendmsg, socket, AddressFamily, ControlMessage, MsgFlags, SockFlag, SockType, UnixAddr,
};
use serde_json::{json, Value};

use super::SeccompError;

/// The name runc and crun give the listener fd in `fds`.
pub const SECCOMP_FD_NAME: &str = "seccompFd";

fn err<'a>(path: &'a Path, op: &'static str) -> impl FnOnce(nix::Error) -> SeccompError + 'a {
    move |source| SeccompError::Listener {
        path: path.to_path_buf(),
        op,
        source,
    }
}

/// Connects to the agent. Needs the host's view of `listener_path`: call it
/// before pivot_root, or from outside the container.
pub fn connect_listener(listener_path: &Path) -> Result<OwnedFd, SeccompError> {
    let addr = UnixAddr::new(listener_path).map_err(err(listener_path, "socket address"))?;
    let sock = socket(
        AddressFamily::Unix,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .map_err(err(listener_path, "socket"))?;
    connect(sock.as_raw_fd(), &addr).map_err(err(listener_path, "connect"))?;
    Ok(sock)
}

/// The `ContainerProcessState` message: `state` is the container's runtime
/// state (status "creating" at this point); its `pid` is reported as the
/// process pid, as runc does.
pub fn process_state(metadata: Option<&str>, state: &Value) -> Value {
    let version = state
        .get("ociVersion")
        .cloned()
        .unwrap_or_else(|| json!("1.2.0"));
    let mut msg = json!({
        "ociVersion": version,
        "fds": [SECCOMP_FD_NAME],
        "pid": state.get("pid").cloned().unwrap_or(json!(0)),
        "state": state,
    });
    if let Some(md) = metadata.filter(|m| !m.is_empty()) {
        msg["metadata"] = json!(md);
    }
    msg
}

/// Sends `msg` (from [`process_state`]) with `fd` on a connected socket.
pub fn send_process_state(
    sock: BorrowedFd<'_>,
    listener_path: &Path,
    msg: &Value,
    fd: BorrowedFd<'_>,
) -> Result<(), SeccompError> {
    let bytes = msg.to_string().into_bytes();
    let fds = [fd.as_raw_fd()];
    let iov = [IoSlice::new(&bytes)];
    let cmsg = [ControlMessage::ScmRights(&fds)];
    let sent = sendmsg::<UnixAddr>(sock.as_raw_fd(), &iov, &cmsg, MsgFlags::MSG_NOSIGNAL, None)
        .map_err(err(listener_path, "sendmsg"))?;
    if sent != bytes.len() {
        // A stream socket may take part of the message; the agent reads one
        // message, so a short write is a failure.
        return Err(err(listener_path, "sendmsg (short write)")(
            nix::Error::EMSGSIZE,
        ));
    }
    Ok(())
}

/// Connects to `listener_path` and sends the listener fd with the container
/// state, as runc does after the init installs a filter with
/// SCMP_ACT_NOTIFY.
pub fn send_notify_fd(
    listener_path: &Path,
    metadata: Option<&str>,
    state: &Value,
    fd: BorrowedFd<'_>,
) -> Result<(), SeccompError> {
    let sock = connect_listener(listener_path)?;
    send_process_state(
        sock.as_fd(),
        listener_path,
        &process_state(metadata, state),
        fd,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn process_state_matches_runc() {
        let state =
            json!({"ociVersion":"1.2.0","id":"c1","status":"creating","pid":42,"bundle":"/b"});
        let msg = process_state(Some("meta"), &state);
        assert_eq!(
            msg,
            json!({"ociVersion":"1.2.0","fds":["seccompFd"],"pid":42,"metadata":"meta","state":state})
        );
        assert!(process_state(Some(""), &state).get("metadata").is_none());
    }
}
