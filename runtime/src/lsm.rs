//! `process.apparmorProfile`, `process.selinuxLabel`, `linux.mountLabel`.
//!
//! A label the config asks for is applied or the container is refused:
//! never a silent skip, which would run the container unconfined. Whether
//! the LSM is enabled is read from the host's /sys before the rootfs
//! replaces it; the attributes are written through the init's private
//! procfs handle (procfs.rs), so the container cannot redirect them.

use std::path::Path;

use oci_spec::runtime::Spec;

use crate::error::{Error, Result};
use crate::procfs::ProcFs;

const APPARMOR_ENABLED: &str = "/sys/module/apparmor/parameters/enabled";
const SELINUX_FS: &str = "/sys/fs/selinux";

/// The labels to apply at execve, checked against the host's LSMs.
#[derive(Debug, Default)]
pub struct Labels {
    apparmor: Option<String>,
    selinux: Option<String>,
    mount: Option<String>,
}

impl Labels {
    /// Read and check the config; must run before pivot_root.
    pub fn from_spec(spec: &Spec) -> Result<Labels> {
        let process = spec.process().as_ref();
        let non_empty = |s: Option<&String>| s.filter(|s| !s.is_empty()).cloned();
        let labels = Labels {
            apparmor: non_empty(process.and_then(|p| p.apparmor_profile().as_ref())),
            selinux: non_empty(process.and_then(|p| p.selinux_label().as_ref())),
            mount: non_empty(spec.linux().as_ref().and_then(|l| l.mount_label().as_ref())),
        };
        if labels.apparmor.is_some() && !apparmor_enabled() {
            return Err(Error::config(
                "process.apparmorProfile",
                "AppArmor is not enabled on this host",
            ));
        }
        if !selinux_enabled() {
            if labels.selinux.is_some() {
                return Err(Error::config(
                    "process.selinuxLabel",
                    "SELinux is not enabled on this host",
                ));
            }
            if labels.mount.is_some() {
                return Err(Error::config(
                    "linux.mountLabel",
                    "SELinux is not enabled on this host",
                ));
            }
        }
        Ok(labels)
    }

    /// Arm the labels for the coming execve; the last step before it.
    pub fn apply(&self, proc: &ProcFs) -> Result<()> {
        if let Some(profile) = &self.apparmor {
            let value = format!("exec {profile}");
            // The LSM-stacking interface first, the legacy one on older
            // kernels.
            proc.write("thread-self/attr/apparmor/exec", value.as_bytes())
                .or_else(|_| proc.write("thread-self/attr/exec", value.as_bytes()))
                .map_err(|e| {
                    Error::config(
                        "process.apparmorProfile",
                        format!("/proc/thread-self/attr/apparmor/exec: {e}"),
                    )
                })?;
        }
        if let Some(label) = &self.selinux {
            proc.write("thread-self/attr/exec", label.as_bytes())
                .map_err(|e| {
                    Error::config(
                        "process.selinuxLabel",
                        format!("/proc/thread-self/attr/exec: {e}"),
                    )
                })?;
        }
        Ok(())
    }
}

fn apparmor_enabled() -> bool {
    std::fs::read(APPARMOR_ENABLED).is_ok_and(|v| v.first() == Some(&b'Y'))
}

fn selinux_enabled() -> bool {
    // selinuxfs is mounted there exactly when SELinux is enabled.
    Path::new(SELINUX_FS).join("enforce").exists()
}
