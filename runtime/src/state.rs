//! The container's state directory `<root>/<id>/`: `state.json`, the copy of
//! config.json it was created with, the exec fifo, and a lock serialising
//! commands on one id.
//!
//! The status is derived, never trusted from the file: a live init (same pid
//! and start time) with the exec fifo present is `created`, without it
//! `running` (or `paused` when its cgroup is frozen); anything else is
//! `stopped`.

use std::collections::HashMap;
use std::fs::File;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

#[allow(deprecated)]
use nix::fcntl::{flock, FlockArg};
use serde::{Deserialize, Serialize};

use crate::cgroups::CgroupRecord;
use crate::error::{Error, IoContext, Result};

pub const OCI_VERSION: &str = "1.3.0";
const STATE_FILE: &str = "state.json";
const CONFIG_FILE: &str = "config.json";
const EXEC_FIFO: &str = "exec.fifo";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Creating,
    Created,
    Running,
    Paused,
    Stopped,
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = match self {
            Status::Creating => "creating",
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        };
        f.pad(s)
    }
}

/// `state.json`: the OCI state plus what berth needs to find the container
/// again. `berth state` prints the OCI part and runc's `created`/`owner`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct State {
    #[serde(rename = "ociVersion")]
    pub oci_version: String,
    pub id: String,
    pub status: Status,
    pub pid: i32,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    #[serde(default, skip_serializing_if = "HashMap::is_empty")]
    pub annotations: HashMap<String, String>,
    pub created: String,
    pub owner: String,
    /// Start time of the init (ticks since boot): guards against pid reuse.
    pub init_start_time: u64,
    /// `None` for a rootless container that was not allowed a cgroup.
    #[serde(default)]
    pub cgroup: Option<CgroupRecord>,
}

impl State {
    /// The OCI state document as hooks and `berth state` expect it.
    pub fn to_oci_json(&self) -> Vec<u8> {
        let mut v = serde_json::json!({
            "ociVersion": self.oci_version,
            "id": self.id,
            "status": self.status,
            "pid": self.pid,
            "bundle": self.bundle,
            "rootfs": self.rootfs,
            "created": self.created,
            "owner": self.owner,
        });
        if !self.annotations.is_empty() {
            v["annotations"] = serde_json::json!(self.annotations);
        }
        if self.status == Status::Stopped {
            v["pid"] = 0.into();
        }
        serde_json::to_vec_pretty(&v).unwrap_or_default()
    }

    /// Is the recorded init still the same live process?
    pub fn init_alive(&self) -> bool {
        self.pid > 0 && crate::sys::process_start_time(self.pid) == Some(self.init_start_time)
    }
}

/// An open, locked state directory.
pub struct StateDir {
    path: PathBuf,
    id: String,
    // Held for the lifetime of the command: flock is released on close.
    _lock: File,
}

impl StateDir {
    /// Reserve `<root>/<id>` for a new container; fails if the id exists.
    pub fn create(root: &Path, id: &str) -> Result<StateDir> {
        validate_id(id)?;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(root)
            .io("mkdir", root)?;
        let path = root.join(id);
        match std::fs::DirBuilder::new().mode(0o700).create(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                return Err(Error::Exists(id.to_string()))
            }
            Err(e) => return Err(Error::io("mkdir", &path, e)),
        }
        let lock = File::open(&path).io("open", &path)?;
        flock_exclusive(&lock, &path)?;
        Ok(StateDir {
            path,
            id: id.to_string(),
            _lock: lock,
        })
    }

    /// Open and lock the state directory of an existing container.
    pub fn open(root: &Path, id: &str) -> Result<StateDir> {
        validate_id(id)?;
        let path = root.join(id);
        let lock = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::NotFound(id.to_string()))
            }
            Err(e) => return Err(Error::io("open", &path, e)),
        };
        flock_exclusive(&lock, &path)?;
        // Deleted by the command that held the lock before us.
        if !path.join(STATE_FILE).exists() && !path.exists() {
            return Err(Error::NotFound(id.to_string()));
        }
        Ok(StateDir {
            path,
            id: id.to_string(),
            _lock: lock,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The fd holding the lock. A cloned init shares it (and so the lock)
    /// and must close it before anything else.
    pub fn lock_fd(&self) -> std::os::fd::RawFd {
        std::os::fd::AsRawFd::as_raw_fd(&self._lock)
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn exec_fifo(&self) -> PathBuf {
        self.path.join(EXEC_FIFO)
    }

    pub fn config_path(&self) -> PathBuf {
        self.path.join(CONFIG_FILE)
    }

    pub fn save_config(&self, raw: &[u8]) -> Result<()> {
        let p = self.config_path();
        std::fs::write(&p, raw).io("write", p)
    }

    pub fn load_config(&self) -> Result<oci_spec::runtime::Spec> {
        let p = self.config_path();
        let raw = std::fs::read(&p).io("read", &p)?;
        crate::config::parse(&raw)
    }

    /// The container's config if its text can hold `key` (a hook kind):
    /// `start` and `delete` need the config only for hooks, and most
    /// containers have none, so the parse is skipped when the word is
    /// absent. A `\u` escape could spell the key, so it parses then too.
    pub fn load_config_for(&self, key: &str) -> Result<Option<oci_spec::runtime::Spec>> {
        let p = self.config_path();
        let raw = std::fs::read(&p).io("read", &p)?;
        if !mentions(&raw, key.as_bytes()) && !mentions(&raw, b"\\u") {
            return Ok(None);
        }
        crate::config::parse(&raw).map(Some)
    }

    /// Write state.json atomically (rename), so a reader never sees half.
    pub fn save(&self, state: &State) -> Result<()> {
        let tmp = self.path.join(".state.json.tmp");
        let data = serde_json::to_vec(state).map_err(|e| Error::Other(e.to_string()))?;
        std::fs::write(&tmp, data).io("write", &tmp)?;
        let dst = self.path.join(STATE_FILE);
        std::fs::rename(&tmp, &dst).io("rename", dst)
    }

    /// Load state.json and derive the current status.
    pub fn load(&self) -> Result<State> {
        let state = read_state(&self.path, &self.id)?;
        Ok(with_status(state, &self.path))
    }

    /// Remove the directory and everything in it.
    pub fn remove(self) -> Result<()> {
        // The files berth puts there, then the directory; anything else
        // (an older layout, a file someone added) by walking it.
        for f in [STATE_FILE, CONFIG_FILE, EXEC_FIFO] {
            let _ = std::fs::remove_file(self.path.join(f));
        }
        match std::fs::remove_dir(&self.path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(_) => std::fs::remove_dir_all(&self.path).io("rmdir", &self.path),
        }
    }
}

/// Read a container's state without taking its lock (for `list`, `state`):
/// a reader must not wait behind a long `create`.
pub fn peek(root: &Path, id: &str) -> Result<State> {
    validate_id(id)?;
    let dir = root.join(id);
    let state = read_state(&dir, id)?;
    Ok(with_status(state, &dir))
}

fn read_state(dir: &Path, id: &str) -> Result<State> {
    let p = dir.join(STATE_FILE);
    let raw = match std::fs::read(&p) {
        Ok(r) => r,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(Error::NotFound(id.to_string()))
        }
        Err(e) => return Err(Error::io("read", &p, e)),
    };
    serde_json::from_slice(&raw).map_err(|e| Error::Other(format!("{}: {e}", p.display())))
}

fn with_status(mut state: State, dir: &Path) -> State {
    state.status = if !state.init_alive() {
        Status::Stopped
    } else if dir.join(EXEC_FIFO).exists() {
        Status::Created
    } else if state
        .cgroup
        .as_ref()
        .and_then(|r| crate::cgroups::Cgroup::open(r).ok())
        .is_some_and(|c| c.is_frozen().unwrap_or(false))
    {
        Status::Paused
    } else {
        Status::Running
    };
    state
}

fn mentions(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

fn flock_exclusive(f: &File, path: &Path) -> Result<()> {
    use std::os::fd::AsRawFd;
    #[allow(deprecated)]
    flock(f.as_raw_fd(), FlockArg::LockExclusive)
        .map_err(|e| Error::sys("flock", path.display(), e))
}

/// Ids become directory names: refuse anything that could escape the root.
fn validate_id(id: &str) -> Result<()> {
    let ok = !id.is_empty()
        && id != "."
        && id != ".."
        && id.len() <= 1024
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '+' | ':' | '@'));
    if ok {
        Ok(())
    } else {
        Err(Error::Other(format!("invalid container id {id:?}")))
    }
}

/// Current time as RFC 3339 with nanoseconds, UTC.
pub fn now_rfc3339() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    rfc3339(now.as_secs() as i64, now.subsec_nanos())
}

fn rfc3339(secs: i64, nanos: u32) -> String {
    let days = secs.div_euclid(86400);
    let tod = secs.rem_euclid(86400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719468;
    let era = z.div_euclid(146097);
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{nanos:09}Z",
        tod / 3600,
        tod % 3600 / 60,
        tod % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_rfc3339() {
        assert_eq!(rfc3339(0, 0), "1970-01-01T00:00:00.000000000Z");
        assert_eq!(rfc3339(1_700_000_000, 5), "2023-11-14T22:13:20.000000005Z");
        assert_eq!(rfc3339(951_782_400, 0), "2000-02-29T00:00:00.000000000Z");
    }

    #[test]
    fn refuses_ids_that_escape() {
        for bad in ["", ".", "..", "a/b", "../x", "a b"] {
            assert!(validate_id(bad).is_err(), "{bad:?}");
        }
        validate_id("my-container_1.2").unwrap();
    }

    #[test]
    fn parses_the_config_only_when_it_can_hold_the_hook() {
        let root = std::env::temp_dir().join(format!("berth-state-test-{}", std::process::id()));
        let dir = StateDir::create(&root, "c").unwrap();
        let with = |text: &str| {
            dir.save_config(text.as_bytes()).unwrap();
            dir.load_config_for("poststop")
        };
        let plain = r#"{"ociVersion":"1.0.2","root":{"path":"rootfs"}}"#;
        assert!(with(plain).unwrap().is_none());
        let hook = r#"{"ociVersion":"1.0.2","hooks":{"poststop":[{"path":"/bin/true"}]}}"#;
        // "poststop" spelled with an escape is still the key.
        let escaped = r#"{"ociVersion":"1.0.2","hooks":{"\u0070oststop":[{"path":"/bin/true"}]}}"#;
        for text in [hook, escaped] {
            let spec = with(text).unwrap().expect("parsed");
            assert_eq!(
                spec.hooks()
                    .as_ref()
                    .and_then(|h| h.poststop().as_ref())
                    .map(Vec::len),
                Some(1),
                "{text}"
            );
        }
        // A broken config still fails when it must be read.
        assert!(with(r#"{"hooks":{"poststop":"#).is_err());
        dir.remove().unwrap();
        let _ = std::fs::remove_dir(&root);
    }
}
