//! The few resource fields libcgroups 0.7 does not handle, written directly.

use std::fs;
use std::path::Path;

use oci_spec::runtime::LinuxResources;

use super::CgroupError;

/// `linux.resources.rdma`: `rdma.max` takes `<device> hca_handle=N hca_object=M`,
/// one device per write; an unset count stays `max`.
pub(crate) fn apply_rdma(r: &LinuxResources, dir: Option<&Path>) -> Result<(), CgroupError> {
    let Some(rdma) = r.rdma() else { return Ok(()) };
    if rdma.is_empty() {
        return Ok(());
    }
    let Some(dir) = dir else {
        return Err(CgroupError::Config {
            field: "linux.resources.rdma".into(),
            msg: "the rdma cgroup controller is not available on this host".into(),
        });
    };
    let file = dir.join("rdma.max");
    let mut devices: Vec<_> = rdma.iter().collect();
    devices.sort_by(|a, b| a.0.cmp(b.0));
    for (dev, lim) in devices {
        let count = |v: Option<u32>| v.map_or("max".to_string(), |v| v.to_string());
        let line = format!(
            "{dev} hca_handle={} hca_object={}",
            count(lim.hca_handles()),
            count(lim.hca_objects())
        );
        fs::write(&file, &line).map_err(|e| CgroupError::Config {
            field: format!("linux.resources.rdma.{dev}"),
            msg: format!("write {line:?} to {}: {e}", file.display()),
        })?;
    }
    Ok(())
}

/// `linux.resources.memory.checkBeforeUpdate`: refuse a new limit below what
/// the cgroup already uses, instead of letting the kernel OOM-kill to fit.
pub(crate) fn check_before_update(
    r: &LinuxResources,
    memory_dir: Option<&Path>,
    v2: bool,
) -> Result<(), CgroupError> {
    let Some(m) = r.memory() else { return Ok(()) };
    let (Some(true), Some(limit), Some(dir)) = (m.check_before_update(), m.limit(), memory_dir)
    else {
        return Ok(());
    };
    if limit <= 0 {
        return Ok(());
    }
    let file = dir.join(if v2 {
        "memory.current"
    } else {
        "memory.usage_in_bytes"
    });
    let usage: u64 = fs::read_to_string(&file)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0);
    if usage > limit as u64 {
        return Err(CgroupError::Config {
            field: "linux.resources.memory.limit".into(),
            msg: format!("{limit} is below the current usage {usage} (checkBeforeUpdate is set)"),
        });
    }
    Ok(())
}

/// `linux.resources.blockIO.weight` on v2. libcgroups 0.7 converts it in u16
/// arithmetic, which overflows for weights above 16 (a panic in debug builds,
/// a wrong weight in release), so berth writes it: `io.bfq.weight` takes the
/// v1 value as is, `io.weight` runc's linear mapping of 10..=1000 to 1..=10000.
pub(crate) fn apply_io_weight_v2(weight: u16, dir: &Path) -> Result<(), CgroupError> {
    if weight == 0 {
        return Ok(());
    }
    let bfq = dir.join("io.bfq.weight");
    let (file, value) = if bfq.exists() {
        (bfq, u64::from(weight))
    } else {
        let w = u64::from(weight);
        (
            dir.join("io.weight"),
            1 + (w.saturating_sub(10)) * 9999 / 990,
        )
    };
    fs::write(&file, value.to_string()).map_err(|e| CgroupError::Config {
        field: "linux.resources.blockIO.weight".into(),
        msg: format!("write {value} to {}: {e}", file.display()),
    })
}
