//! What berth does around libcgroups' systemd manager, which only talks to
//! systemd: the manager starts the scope and sets the limits systemd has
//! properties for; the rest is written into the scope's cgroup, which systemd
//! delegated to us (`Delegate=yes`), as runc does.

use std::fs;
use std::path::Path;

use oci_spec::runtime::LinuxResources;

use super::hierarchy::Hierarchy;
use super::CgroupError;

/// Every controller the host has, enabled in each ancestor of the scope
/// (`scope` relative to the hierarchy root). systemd only enables the ones
/// it manages (cpu, io, memory, pids, cpuset): without this the scope has no
/// hugetlb, rdma or misc files, so neither those limits nor `events --stats`
/// work. systemd leaves controllers it does not know alone.
pub(crate) fn enable_controllers_above(hierarchy: &Hierarchy, scope: &Path) {
    let _ = hierarchy.enable_along(scope, |_| Ok(()));
}

/// `linux.resources.hugepageLimits`: systemd has no property for them.
pub(crate) fn apply_hugetlb(r: &LinuxResources, dir: &Path) -> Result<(), CgroupError> {
    for (i, l) in r.hugepage_limits().iter().flatten().enumerate() {
        let file = dir.join(format!("hugetlb.{}.max", l.page_size()));
        fs::write(&file, l.limit().to_string()).map_err(|e| CgroupError::Config {
            field: format!("linux.resources.hugepageLimits[{i}]"),
            msg: format!("write {} to {}: {e}", l.limit(), file.display()),
        })?;
    }
    Ok(())
}

/// `linux.resources.devices`: libcgroups' systemd manager has no device
/// support, so the eBPF device program (the one its v2 manager builds) is
/// attached to the scope here.
#[cfg(feature = "cgroupsv2-devices")]
pub(crate) fn apply_devices(r: &LinuxResources, dir: &Path) -> Result<(), CgroupError> {
    libcgroups::v2::devices::controller::Devices::apply_devices(dir, r.devices()).map_err(|e| {
        CgroupError::Config {
            field: "linux.resources.devices".into(),
            msg: format!("device program for {}: {e}", dir.display()),
        }
    })
}

/// Without the eBPF feature device rules are not enforced on v2 (docs/cgroups.md).
#[cfg(not(feature = "cgroupsv2-devices"))]
pub(crate) fn apply_devices(_: &LinuxResources, _: &Path) -> Result<(), CgroupError> {
    Ok(())
}
