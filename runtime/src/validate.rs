//! Semantic checks of a parsed config, before anything is created, so a bad
//! config never leaves a half-made container behind. Each error names the
//! JSON path of the field at fault.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxNamespaceType, Spec};

use crate::error::{Error, Result};

/// Check `spec` and return the absolute rootfs path.
pub fn spec(spec: &Spec, bundle: &Path) -> Result<PathBuf> {
    let rootfs = root(spec, bundle)?;
    process(spec)?;
    mounts(spec)?;
    let namespaces = namespaces(spec)?;
    id_mappings(spec, &namespaces)?;
    uts(spec, &namespaces)?;
    crate::sysctl::check(spec)?;
    paths(spec)?;
    hooks(spec)?;
    Ok(rootfs)
}

fn root(spec: &Spec, bundle: &Path) -> Result<PathBuf> {
    let root = spec
        .root()
        .as_ref()
        .ok_or_else(|| Error::config("root", "required"))?;
    if root.path().as_os_str().is_empty() {
        return Err(Error::config("root.path", "required"));
    }
    let path = bundle.join(root.path());
    match std::fs::metadata(&path) {
        Ok(m) if m.is_dir() => Ok(path),
        Ok(_) => Err(Error::config(
            "root.path",
            format!("{}: not a directory", path.display()),
        )),
        Err(e) => Err(Error::config(
            "root.path",
            format!("{}: {e}", path.display()),
        )),
    }
}

fn process(spec: &Spec) -> Result<()> {
    let process = spec
        .process()
        .as_ref()
        .ok_or_else(|| Error::config("process", "required"))?;
    match process.args() {
        Some(args) if !args.is_empty() => {}
        _ => return Err(Error::config("process.args", "must not be empty")),
    }
    if !process.cwd().is_absolute() {
        return Err(Error::config("process.cwd", "must be absolute"));
    }
    if let Some(env) = process.env() {
        for (i, e) in env.iter().enumerate() {
            if !e.contains('=') {
                return Err(Error::config(
                    format!("process.env[{i}]"),
                    format!("{e:?} is not KEY=VALUE"),
                ));
            }
        }
    }
    Ok(())
}

fn mounts(spec: &Spec) -> Result<()> {
    for (i, m) in spec.mounts().iter().flatten().enumerate() {
        if !m.destination().is_absolute() {
            return Err(Error::config(
                format!("mounts[{i}].destination"),
                "must be absolute",
            ));
        }
        if m.typ().is_none() && m.source().is_none() {
            return Err(Error::config(
                format!("mounts[{i}]"),
                "needs a type or a source",
            ));
        }
    }
    Ok(())
}

/// Types of the namespaces the container gets, new or joined.
fn namespaces(spec: &Spec) -> Result<HashSet<LinuxNamespaceType>> {
    let mut seen = HashSet::new();
    let Some(linux) = spec.linux() else {
        return Ok(seen);
    };
    for (i, ns) in linux.namespaces().iter().flatten().enumerate() {
        if !seen.insert(ns.typ()) {
            return Err(Error::config(
                format!("linux.namespaces[{i}].type"),
                format!("duplicate namespace {}", ns.typ()),
            ));
        }
        if let Some(path) = ns.path() {
            if !path.is_absolute() {
                return Err(Error::config(
                    format!("linux.namespaces[{i}].path"),
                    "must be absolute",
                ));
            }
            if let Err(e) = std::fs::metadata(path) {
                return Err(Error::config(
                    format!("linux.namespaces[{i}].path"),
                    format!("{}: {e}", path.display()),
                ));
            }
        }
    }
    Ok(seen)
}

fn id_mappings(spec: &Spec, ns: &HashSet<LinuxNamespaceType>) -> Result<()> {
    let Some(linux) = spec.linux() else {
        return Ok(());
    };
    let has_maps = linux.uid_mappings().as_ref().is_some_and(|m| !m.is_empty())
        || linux.gid_mappings().as_ref().is_some_and(|m| !m.is_empty());
    let new_userns = linux
        .namespaces()
        .iter()
        .flatten()
        .any(|n| n.typ() == LinuxNamespaceType::User && n.path().is_none());
    if new_userns && !has_maps {
        return Err(Error::config(
            "linux.uidMappings",
            "required with a new user namespace",
        ));
    }
    if has_maps && !ns.contains(&LinuxNamespaceType::User) {
        return Err(Error::config(
            "linux.uidMappings",
            "needs a user namespace in linux.namespaces",
        ));
    }
    if linux.time_offsets().is_some() && !ns.contains(&LinuxNamespaceType::Time) {
        return Err(Error::config(
            "linux.timeOffsets",
            "needs a time namespace in linux.namespaces",
        ));
    }
    Ok(())
}

fn uts(spec: &Spec, ns: &HashSet<LinuxNamespaceType>) -> Result<()> {
    for (field, value) in [
        ("hostname", spec.hostname()),
        ("domainname", spec.domainname()),
    ] {
        if value.as_ref().is_some_and(|v| !v.is_empty()) && !ns.contains(&LinuxNamespaceType::Uts) {
            return Err(Error::config(
                field,
                "needs a uts namespace in linux.namespaces",
            ));
        }
    }
    Ok(())
}

fn paths(spec: &Spec) -> Result<()> {
    let Some(linux) = spec.linux() else {
        return Ok(());
    };
    let lists = [
        ("linux.maskedPaths", linux.masked_paths()),
        ("linux.readonlyPaths", linux.readonly_paths()),
    ];
    for (name, list) in lists {
        for (i, p) in list.iter().flatten().enumerate() {
            if !p.starts_with('/') {
                return Err(Error::config(format!("{name}[{i}]"), "must be absolute"));
            }
        }
    }
    for (i, d) in linux.devices().iter().flatten().enumerate() {
        if !d.path().is_absolute() {
            return Err(Error::config(
                format!("linux.devices[{i}].path"),
                "must be absolute",
            ));
        }
    }
    Ok(())
}

fn hooks(spec: &Spec) -> Result<()> {
    let Some(hooks) = spec.hooks() else {
        return Ok(());
    };
    for (kind, list) in crate::hooks::all(hooks) {
        for (i, h) in list.iter().enumerate() {
            if !h.path().is_absolute() {
                return Err(Error::config(
                    format!("hooks.{kind}[{i}].path"),
                    "must be absolute",
                ));
            }
            if h.timeout().is_some_and(|t| t <= 0) {
                return Err(Error::config(
                    format!("hooks.{kind}[{i}].timeout"),
                    "must be positive",
                ));
            }
        }
    }
    Ok(())
}
