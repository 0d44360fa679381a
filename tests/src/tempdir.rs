//! Per-test temporary directories that are never removed while something is mounted inside.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// Base directory of every temporary directory of this process.
pub fn base() -> PathBuf {
    let root = std::env::var_os("BERTH_TEST_TMP")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/tmp/berth-tests"));
    root.join(std::process::id().to_string())
}

/// A number unique within this test process.
pub fn unique() -> u32 {
    COUNTER.fetch_add(1, Ordering::Relaxed)
}

pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    pub fn new(label: &str) -> std::io::Result<TempDir> {
        let path = base().join(format!("{label}-{}", unique()));
        fs::create_dir_all(&path)?;
        Ok(TempDir { path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Mount points at or below `dir` in this process's mount namespace.
pub fn mounts_under(dir: &Path) -> Vec<String> {
    let Ok(info) = fs::read_to_string("/proc/self/mountinfo") else {
        return Vec::new();
    };
    let prefix = dir.to_string_lossy().into_owned();
    info.lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|mp| *mp == prefix || mp.starts_with(&format!("{prefix}/")))
        .map(str::to_owned)
        .collect()
}

impl Drop for TempDir {
    fn drop(&mut self) {
        // remove_dir_all would descend into a bind mount a runtime left behind and delete
        // the files of its source; leaking the directory is the safe choice.
        let left = mounts_under(&self.path);
        if !left.is_empty() {
            eprintln!(
                "berth-tests: keeping {}: still mounted: {left:?}",
                self.path.display()
            );
            return;
        }
        let _ = fs::remove_dir_all(&self.path);
    }
}
