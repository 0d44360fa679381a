//! A bundle: rootfs with a private copy of static busybox, and a config.json to tweak.

use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use serde_json::{json, Value};

use crate::{spec, Error, Result};

pub const BUSYBOX_CANDIDATES: [&str; 2] = ["/bin/busybox", "/usr/bin/busybox"];

/// Every applet of the host's busybox, linked in /bin as `busybox --install -s` would but
/// with relative links, so the rootfs does not point back at the host.
fn applets() -> Result<&'static [String]> {
    static APPLETS: OnceLock<Vec<String>> = OnceLock::new();
    if let Some(a) = APPLETS.get() {
        return Ok(a);
    }
    // Through the reaper: its thread would otherwise collect this child
    // before `output` does (ECHILD).
    let out = crate::reaper::output(std::process::Command::new(busybox()?).arg("--list"))
        .map_err(|e| Error(format!("busybox --list: {e}")))?;
    let list = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|a| !a.is_empty() && *a != "busybox")
        .map(str::to_owned)
        .collect();
    Ok(APPLETS.get_or_init(|| list))
}

pub fn busybox() -> Result<&'static str> {
    BUSYBOX_CANDIDATES
        .iter()
        .copied()
        .find(|p| Path::new(p).exists())
        .ok_or_else(|| Error("static busybox not found (apt-get install busybox-static)".into()))
}

pub struct Bundle {
    pub dir: PathBuf,
    pub config: Value,
}

impl Bundle {
    /// Creates `dir` with a busybox rootfs and the default config running `args`.
    pub fn create(dir: &Path, args: &[&str], cgroups_path: &str) -> Result<Bundle> {
        let rootfs = dir.join("rootfs");
        for d in [
            "bin", "etc", "tmp", "proc", "sys", "dev", "root", "run", "var/tmp", "home", "mnt",
        ] {
            fs::create_dir_all(rootfs.join(d))?;
        }
        fs::set_permissions(rootfs.join("tmp"), fs::Permissions::from_mode(0o1777))?;
        fs::copy(busybox()?, rootfs.join("bin/busybox"))?;
        for a in applets()? {
            symlink("busybox", rootfs.join("bin").join(a))?;
        }
        fs::write(
            rootfs.join("etc/passwd"),
            "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
        )?;
        fs::write(rootfs.join("etc/group"), "root:x:0:\nnogroup:x:65534:\n")?;
        let config = spec::default_config(args, cgroups_path);
        let b = Bundle {
            dir: dir.to_path_buf(),
            config,
        };
        b.save()?;
        Ok(b)
    }

    pub fn rootfs(&self) -> PathBuf {
        self.dir.join("rootfs")
    }

    pub fn config_path(&self) -> PathBuf {
        self.dir.join("config.json")
    }

    /// Writes the current `config` to config.json.
    pub fn save(&self) -> Result {
        fs::write(self.config_path(), serde_json::to_vec_pretty(&self.config)?)?;
        Ok(())
    }

    /// Replaces process.args.
    pub fn args(&mut self, args: &[&str]) -> &mut Self {
        self.config["process"]["args"] = json!(args);
        self
    }

    /// process.args = ["sh", "-c", script].
    pub fn script(&mut self, script: &str) -> &mut Self {
        self.args(&["sh", "-c", script])
    }

    pub fn push_mount(&mut self, mount: Value) -> &mut Self {
        push(&mut self.config["mounts"], mount);
        self
    }

    pub fn push_namespace(&mut self, ns: Value) -> &mut Self {
        push(&mut self.config["linux"]["namespaces"], ns);
        self
    }

    /// Removes the namespace of `kind` from linux.namespaces.
    pub fn drop_namespace(&mut self, kind: &str) -> &mut Self {
        if let Some(a) = self.config["linux"]["namespaces"].as_array_mut() {
            a.retain(|n| n["type"] != kind);
        }
        self
    }

    /// Removes the mount whose destination is `dest`.
    pub fn drop_mount(&mut self, dest: &str) -> &mut Self {
        if let Some(a) = self.config["mounts"].as_array_mut() {
            a.retain(|m| m["destination"] != dest);
        }
        self
    }

    /// Adds a hook of `kind` (prestart, createRuntime, ...).
    pub fn push_hook(&mut self, kind: &str, hook: Value) -> &mut Self {
        push(&mut self.config["hooks"][kind], hook);
        self
    }

    /// Creates a directory next to the rootfs (host side), e.g. a bind mount source.
    pub fn host_dir(&self, name: &str) -> Result<PathBuf> {
        let p = self.dir.join(name);
        fs::create_dir_all(&p)?;
        Ok(p)
    }
}

fn push(v: &mut Value, item: Value) {
    if !v.is_array() {
        *v = json!([]);
    }
    if let Some(a) = v.as_array_mut() {
        a.push(item);
    }
}
