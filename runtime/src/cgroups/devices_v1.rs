//! `linux.resources.devices` on cgroup v1, written by berth at `create`.
//!
//! Why not libcgroups: its v1 manager opens a fresh procfs handle and parses
//! mountinfo once per controller when it is built (~1 ms on this 2-core host,
//! about an eighth of a whole `berth run`), and the default spec sets nothing
//! but a device rule. So when device rules are all a new container asks for,
//! berth writes them into the `devices` directory it has just made, exactly
//! as libcgroups 0.7 would: the spec's rules in order, then libcgroups'
//! default allow list (its `default_devices` and `default_allow_devices`,
//! crate-private there, repeated below). Everything else (other resources,
//! `update`, cgroup v2's eBPF program) still goes through libcgroups.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType};

use super::CgroupError;

const FIELD: &str = "linux.resources.devices";

/// libcgroups 0.7's defaults, in its order: `default_devices` (null, zero,
/// full, tty, urandom, random; `rwm`), then `default_allow_devices` (`mknod`
/// of any char or block device, console, pts, ptmx, tun).
const DEFAULTS: &[(LinuxDeviceType, Option<i64>, Option<i64>, &str)] = &[
    (LinuxDeviceType::C, Some(1), Some(3), "rwm"),
    (LinuxDeviceType::C, Some(1), Some(5), "rwm"),
    (LinuxDeviceType::C, Some(1), Some(7), "rwm"),
    (LinuxDeviceType::C, Some(5), Some(0), "rwm"),
    (LinuxDeviceType::C, Some(1), Some(9), "rwm"),
    (LinuxDeviceType::C, Some(1), Some(8), "rwm"),
    (LinuxDeviceType::C, None, None, "m"),
    (LinuxDeviceType::B, None, None, "m"),
    (LinuxDeviceType::C, Some(5), Some(1), "rwm"),
    (LinuxDeviceType::C, Some(136), None, "rwm"),
    (LinuxDeviceType::C, Some(5), Some(2), "rwm"),
    (LinuxDeviceType::C, Some(10), Some(200), "rwm"),
];

/// The rule as the kernel reads it: `c 1:3 rwm`, `*` for an unset number
/// (oci-spec's formatting, which libcgroups writes too).
fn line(rule: &LinuxDeviceCgroup) -> String {
    rule.to_string()
}

fn default_line(
    &(typ, major, minor, access): &(LinuxDeviceType, Option<i64>, Option<i64>, &str),
) -> String {
    let num = |n: Option<i64>| n.map_or("*".to_string(), |n| n.to_string());
    format!("{} {}:{} {access}", typ.as_str(), num(major), num(minor))
}

/// `devices.allow` and `devices.deny` of one cgroup, each opened once: the
/// kernel takes one rule per write(2), so a rule is one write, not one open.
struct Files {
    dir: PathBuf,
    allow: Option<File>,
    deny: Option<File>,
}

impl Files {
    fn write(&mut self, allow: bool, rule: &str, field: &str) -> Result<(), CgroupError> {
        let (slot, name) = if allow {
            (&mut self.allow, "devices.allow")
        } else {
            (&mut self.deny, "devices.deny")
        };
        let path = self.dir.join(name);
        let err = |e: std::io::Error| CgroupError::Config {
            field: field.to_string(),
            msg: format!("write {rule:?} to {}: {e}", path.display()),
        };
        let file = match slot {
            Some(f) => f,
            None => slot.insert(OpenOptions::new().write(true).open(&path).map_err(err)?),
        };
        file.write_all(rule.as_bytes()).map_err(err)
    }
}

/// Write `rules` (the spec's, in order) and then the defaults into the v1
/// `devices` cgroup at `dir`.
pub(crate) fn apply(rules: &[LinuxDeviceCgroup], dir: &Path) -> Result<(), CgroupError> {
    let mut files = Files {
        dir: dir.to_path_buf(),
        allow: None,
        deny: None,
    };
    for (i, rule) in rules.iter().enumerate() {
        files.write(rule.allow(), &line(rule), &format!("{FIELD}[{i}]"))?;
    }
    for d in DEFAULTS {
        files.write(true, &default_line(d), &format!("{FIELD} (default rule)"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::LinuxDeviceCgroupBuilder;

    #[test]
    fn lines_match_libcgroups_formatting() {
        let deny_all = LinuxDeviceCgroupBuilder::default()
            .allow(false)
            .access("rwm")
            .build()
            .unwrap();
        assert_eq!(line(&deny_all), "a *:* rwm");
        let got: Vec<String> = DEFAULTS.iter().map(default_line).collect();
        assert_eq!(
            got,
            [
                "c 1:3 rwm",
                "c 1:5 rwm",
                "c 1:7 rwm",
                "c 5:0 rwm",
                "c 1:9 rwm",
                "c 1:8 rwm",
                "c *:* m",
                "b *:* m",
                "c 5:1 rwm",
                "c 136:* rwm",
                "c 5:2 rwm",
                "c 10:200 rwm",
            ]
        );
    }
}
