//! `process.capabilities`: the five sets, applied with the caps crate.
//!
//! The bounding set is dropped while the init still has CAP_SETPCAP (before
//! switching user); the other sets are set after the switch, with
//! PR_SET_KEEPCAPS keeping the permitted set across setuid.

use caps::{CapSet, Capability, CapsHashSet};
use oci_spec::runtime::{Capabilities, LinuxCapabilities};

use crate::error::{Error, Result};

pub struct Sets {
    bounding: CapsHashSet,
    effective: CapsHashSet,
    inheritable: CapsHashSet,
    permitted: CapsHashSet,
    ambient: CapsHashSet,
    supported: CapsHashSet,
}

/// Translate the config sets; a name the kernel does not know is an error
/// naming the field.
pub fn from_spec(c: Option<&LinuxCapabilities>) -> Result<Option<Sets>> {
    let Some(c) = c else { return Ok(None) };
    let supported = supported();
    let convert = |field, set| convert(field, set, &supported);
    Ok(Some(Sets {
        bounding: convert("process.capabilities.bounding", c.bounding())?,
        effective: convert("process.capabilities.effective", c.effective())?,
        inheritable: convert("process.capabilities.inheritable", c.inheritable())?,
        permitted: convert("process.capabilities.permitted", c.permitted())?,
        ambient: convert("process.capabilities.ambient", c.ambient())?,
        supported,
    }))
}

/// The capabilities this kernel knows: one read of cap_last_cap instead of
/// a prctl probe per capability.
fn supported() -> CapsHashSet {
    caps::runtime::procfs_all_supported(None)
        .unwrap_or_else(|_| caps::runtime::thread_all_supported())
}

fn convert(
    field: &str,
    set: &Option<Capabilities>,
    supported: &CapsHashSet,
) -> Result<CapsHashSet> {
    let mut out = CapsHashSet::new();
    for (i, cap) in set.iter().flatten().enumerate() {
        let name = format!("CAP_{cap}");
        let c: Capability = name.parse().map_err(|_| {
            Error::config(
                format!("{field}[{i}]"),
                format!("unknown capability {name}"),
            )
        })?;
        // Capabilities newer than this kernel are skipped, as runc does.
        if supported.contains(&c) {
            out.insert(c);
        }
    }
    Ok(out)
}

/// Shrink the bounding set; needs CAP_SETPCAP, so runs before the user
/// switch.
pub fn drop_bounding(sets: &Sets) -> Result<()> {
    for c in &sets.supported {
        if !sets.bounding.contains(c) {
            caps::drop(None, CapSet::Bounding, *c)
                .map_err(|e| Error::Other(format!("prctl(PR_CAPBSET_DROP, {c}): {e}")))?;
        }
    }
    Ok(())
}

/// Set effective, permitted, inheritable and ambient, in the order the
/// kernel accepts: permitted bounds the others, ambient needs both
/// permitted and inheritable.
pub fn apply(sets: &Sets) -> Result<()> {
    let set = |which: CapSet, v: &CapsHashSet, name: &str| {
        caps::set(None, which, v).map_err(|e| Error::Other(format!("capset {name}: {e}")))
    };
    set(CapSet::Effective, &sets.effective, "effective")?;
    set(CapSet::Permitted, &sets.permitted, "permitted")?;
    set(CapSet::Inheritable, &sets.inheritable, "inheritable")?;
    caps::clear(None, CapSet::Ambient).map_err(|e| Error::Other(format!("clear ambient: {e}")))?;
    for c in &sets.ambient {
        // The kernel refuses an ambient capability that is not both
        // permitted and inheritable; runc skips those silently too.
        if sets.permitted.contains(c) && sets.inheritable.contains(c) {
            caps::raise(None, CapSet::Ambient, *c)
                .map_err(|e| Error::Other(format!("raise ambient {c}: {e}")))?;
        }
    }
    Ok(())
}

/// Without `process.capabilities` the process keeps root's sets, but never
/// inheritable or ambient capabilities nobody asked for: whatever the
/// caller of the runtime had there would otherwise pass into every program
/// the container execs (CVE-2022-29162).
pub fn clear_inherited() -> Result<()> {
    caps::clear(None, CapSet::Ambient).map_err(|e| Error::Other(format!("clear ambient: {e}")))?;
    caps::clear(None, CapSet::Inheritable)
        .map_err(|e| Error::Other(format!("clear inheritable: {e}")))
}
