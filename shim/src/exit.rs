//! How the container ended: the exit record and the files it goes to.

use std::io::Write;
use std::path::Path;

use crate::error::{Ctx, Result};
use crate::logs::json_string;
use crate::sys::Status;

#[derive(Debug)]
pub struct ExitInfo {
    pub id: String,
    pub pid: i32,
    pub status: Status,
    pub oom_killed: bool,
    pub started_at: String,
    pub finished_at: String,
    pub log_dropped_bytes: u64,
}

impl ExitInfo {
    pub fn code(&self) -> i32 {
        self.status.code()
    }

    pub fn to_json(&self) -> String {
        let sig = self
            .status
            .signal()
            .map_or_else(|| "null".to_string(), |s| s.to_string());
        format!(
            "{{\"id\":{},\"pid\":{},\"exit_code\":{},\"signal\":{},\"oom_killed\":{},\"started_at\":{},\"finished_at\":{},\"log_dropped_bytes\":{}}}\n",
            json_string(&self.id),
            self.pid,
            self.code(),
            sig,
            self.oom_killed,
            json_string(&self.started_at),
            json_string(&self.finished_at),
            self.log_dropped_bytes
        )
    }
}

/// Write `content` to `path` atomically: a temporary file in the same directory, then rename.
pub fn write_atomic(path: &Path, content: &[u8]) -> Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(format!(".tmp.{}", crate::sys::getpid()));
    let tmp = std::path::PathBuf::from(tmp);
    let mut f = std::fs::File::create(&tmp).ctx("create", tmp.display())?;
    f.write_all(content).ctx("write", tmp.display())?;
    f.sync_all().ctx("fsync", tmp.display())?;
    std::fs::rename(&tmp, path).ctx("rename", path.display())
}
