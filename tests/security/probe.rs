//! A tiny static helper for what busybox cannot do from inside a container (keyctl),
//! compiled once per test run with the host's C compiler.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use berth_tests::{reaper, Bundle, Error};

const SOURCE: &str = r#"
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/syscall.h>

#define KEYCTL_GET_KEYRING_ID 0
#define KEY_SPEC_SESSION_KEYRING -3

/* keyring: print the session keyring's serial, then add a key to it. */
int main(int argc, char **argv) {
    if (argc < 2 || strcmp(argv[1], "keyring") != 0) return 2;
    long id = syscall(SYS_keyctl, KEYCTL_GET_KEYRING_ID, KEY_SPEC_SESSION_KEYRING, 0);
    printf("session %ld\n", id);
    long k = syscall(SYS_add_key, "user", "berth-probe", "x", 1, KEY_SPEC_SESSION_KEYRING);
    printf("add_key %s\n", k < 0 ? "denied" : "ok");
    return 0;
}
"#;

/// The compiled helper, or why there is none.
fn binary() -> Result<&'static Path, String> {
    static BIN: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    BIN.get_or_init(|| {
        let dir = dir();
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        let src = dir.join("probe.c");
        let bin = dir.join("probe");
        std::fs::write(&src, SOURCE).map_err(|e| e.to_string())?;
        let out = reaper::output(
            Command::new("cc")
                .args(["-static", "-O2", "-o"])
                .arg(&bin)
                .arg(&src),
        )
        .map_err(|e| format!("cc: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "cc -static failed: {}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        Ok(bin)
    })
    .as_ref()
    .map(PathBuf::as_path)
    .map_err(Clone::clone)
}

/// Copies the helper into the bundle's rootfs as /bin/probe. `Ok(false)`: no C compiler
/// with a static libc on this host.
pub fn install(b: &Bundle) -> Result<bool, Error> {
    let Ok(bin) = binary() else {
        return Ok(false);
    };
    std::fs::copy(bin, b.rootfs().join("bin/probe"))?;
    Ok(true)
}

/// Why `install` returned false.
pub fn missing_reason() -> String {
    binary().err().unwrap_or_default()
}

fn dir() -> PathBuf {
    berth_tests::tempdir::base().join("probe")
}

/// Removes the compiled helper, and this run's temporary base directory if nothing else
/// is left in it; called once all cases ran.
pub fn cleanup() {
    let _ = std::fs::remove_dir_all(dir());
    let _ = std::fs::remove_dir(berth_tests::tempdir::base());
}
