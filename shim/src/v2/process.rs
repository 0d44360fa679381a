//! What the shim knows of each container and each exec'd process: pid,
//! status, how it ended, its stdio as containerd named it, and the fds the
//! shim holds for it.

use std::collections::HashMap;
use std::fs::File;
use std::path::PathBuf;
use std::time::SystemTime;

use containerd_shim::api;
use containerd_shim::protos::events::task::TaskExit;
use containerd_shim::protos::protobuf::well_known_types::timestamp::Timestamp;
use containerd_shim::protos::protobuf::MessageField;

use crate::runtime::Runtime;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Created,
    Running,
    Paused,
    Stopped,
}

impl Status {
    pub fn api(self) -> api::Status {
        match self {
            Status::Created => api::Status::CREATED,
            Status::Running => api::Status::RUNNING,
            Status::Paused => api::Status::PAUSED,
            Status::Stopped => api::Status::STOPPED,
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub struct Exit {
    /// The exit code, or 128 + the signal that killed it.
    pub code: u32,
    pub at: SystemTime,
}

#[derive(Default, Clone)]
pub struct StdioPaths {
    pub stdin: String,
    pub stdout: String,
    pub stderr: String,
    pub terminal: bool,
}

pub struct Process {
    pub pid: u32,
    pub status: Status,
    pub exit: Option<Exit>,
    pub stdio: StdioPaths,
    /// The pty master, for resizes.
    pub console: Option<File>,
    /// Read ends of the output fifos (see stdio::Stdio::keep).
    pub keep: Vec<File>,
    /// An exec's process.json, written at `exec`, run at `start`.
    pub spec: Option<PathBuf>,
    /// `start` is under way: containerd must see the start event before the exit.
    pub starting: bool,
    /// The exit event held back while starting.
    pub deferred: Option<TaskExit>,
}

impl Process {
    pub fn new(stdio: StdioPaths) -> Process {
        Process {
            pid: 0,
            status: Status::Created,
            exit: None,
            stdio,
            console: None,
            keep: Vec::new(),
            spec: None,
            starting: false,
            deferred: None,
        }
    }

    pub fn exited(&mut self, code: u32, at: SystemTime) {
        self.status = Status::Stopped;
        self.exit = Some(Exit { code, at });
        // The relay threads end on their own; resizing a dead pty means nothing.
        self.console = None;
    }

    pub fn exit_status(&self) -> u32 {
        self.exit.map_or(0, |e| e.code)
    }

    pub fn exited_at(&self) -> MessageField<Timestamp> {
        self.exit.map_or(MessageField::none(), |e| {
            MessageField::some(timestamp(e.at))
        })
    }
}

pub struct Container {
    pub bundle: PathBuf,
    pub runtime: Runtime,
    /// The rootfs mounts containerd asked for are ours to undo.
    pub rootfs_mounted: bool,
    pub init: Process,
    pub execs: HashMap<String, Process>,
    pub oom: Option<crate::oom::OomWatch>,
}

impl Container {
    pub fn process(&self, exec_id: &str) -> Option<&Process> {
        if exec_id.is_empty() {
            Some(&self.init)
        } else {
            self.execs.get(exec_id)
        }
    }

    pub fn process_mut(&mut self, exec_id: &str) -> Option<&mut Process> {
        if exec_id.is_empty() {
            Some(&mut self.init)
        } else {
            self.execs.get_mut(exec_id)
        }
    }

    /// The live process with this pid, as (exec id, process); "" is the init.
    pub fn by_pid(&mut self, pid: u32) -> Option<(String, &mut Process)> {
        if self.init.pid == pid && self.init.exit.is_none() {
            return Some((String::new(), &mut self.init));
        }
        self.execs
            .iter_mut()
            .find(|(_, p)| p.pid == pid && p.exit.is_none())
            .map(|(k, p)| (k.clone(), p))
    }
}

pub fn timestamp(t: SystemTime) -> Timestamp {
    let d = t.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    let mut ts = Timestamp::new();
    ts.seconds = d.as_secs() as i64;
    ts.nanos = d.subsec_nanos() as i32;
    ts
}
