//! Where a container's cgroup lives: `linux.cgroupsPath` rules.
//!
//! - absolute `/a/b`: that path under every hierarchy's root;
//! - relative `a/b`: under berth's own parent, `/berth/a/b` (runc puts it under
//!   its own cgroup instead; on a shared host that is somebody else's cgroup);
//! - unset: `/berth/<id>`, so leak checks can find anything berth left (the
//!   shared `/berth` parent stays once made, as runc's and crun's parents do);
//! - with `--systemd-cgroup`: `slice:prefix:name`, a transient systemd scope
//!   `<prefix>-<name>.scope` in `slice` (default `system.slice:berth:<id>`).

use std::path::{Component, Path, PathBuf};

use super::CgroupError;

pub(crate) const FIELD: &str = "linux.cgroupsPath";
pub(crate) const PARENT: &str = "/berth";

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Placement {
    /// A cgroupfs path relative to each hierarchy's root, always absolute.
    Fs(PathBuf),
    /// A systemd scope; `path()` is where systemd puts it in the hierarchy.
    Systemd {
        slice: String,
        prefix: String,
        name: String,
    },
}

impl Placement {
    pub(crate) fn resolve(
        cgroups_path: Option<&Path>,
        id: &str,
        systemd: bool,
    ) -> Result<Placement, CgroupError> {
        if systemd {
            return match cgroups_path {
                None => Ok(Placement::Systemd {
                    slice: "system.slice".into(),
                    prefix: "berth".into(),
                    name: id.into(),
                }),
                Some(p) => parse_systemd(&p.to_string_lossy()),
            };
        }
        let Some(p) = cgroups_path else {
            return Ok(Placement::Fs(Path::new(PARENT).join(id)));
        };
        let text = p.to_string_lossy();
        if text.split(':').count() == 3 {
            return Err(config(format!(
                "{text:?} is a systemd slice:prefix:name path; pass --systemd-cgroup"
            )));
        }
        let mut clean = PathBuf::from("/");
        for c in p.components() {
            match c {
                Component::Normal(n) => clean.push(n),
                Component::RootDir | Component::CurDir => {}
                Component::ParentDir | Component::Prefix(_) => {
                    return Err(config(format!("{text:?} must not contain \"..\"")));
                }
            }
        }
        if clean == Path::new("/") {
            return Err(config("must not be the root cgroup".into()));
        }
        if p.is_absolute() {
            Ok(Placement::Fs(clean))
        } else {
            Ok(Placement::Fs(
                Path::new(PARENT).join(clean.strip_prefix("/").unwrap_or(&clean)),
            ))
        }
    }

    /// The path inside the hierarchy (relative to its root, starting with `/`).
    pub(crate) fn path(&self) -> PathBuf {
        match self {
            Placement::Fs(p) => p.clone(),
            Placement::Systemd {
                slice,
                prefix,
                name,
            } => {
                let mut p = expand_slice(slice);
                p.push(scope_name(prefix, name));
                p
            }
        }
    }

    /// What `state.json` records and what libcgroups takes as `cgroups_path`.
    pub(crate) fn spelled(&self) -> String {
        match self {
            Placement::Fs(p) => p.to_string_lossy().into_owned(),
            Placement::Systemd {
                slice,
                prefix,
                name,
            } => format!("{slice}:{prefix}:{name}"),
        }
    }
}

fn config(msg: String) -> CgroupError {
    CgroupError::Config {
        field: FIELD.into(),
        msg,
    }
}

fn parse_systemd(text: &str) -> Result<Placement, CgroupError> {
    let parts: Vec<&str> = text.split(':').collect();
    let [slice, prefix, name] = parts[..] else {
        return Err(config(format!(
            "{text:?}: with --systemd-cgroup it must be slice:prefix:name"
        )));
    };
    if !slice.is_empty() && (!slice.ends_with(".slice") || slice.contains('/')) {
        return Err(config(format!(
            "{text:?}: slice {slice:?} must be a systemd slice name ending in .slice"
        )));
    }
    if name.is_empty() || name.contains('/') || prefix.contains('/') {
        return Err(config(format!(
            "{text:?}: name must be non-empty and prefix and name must not contain '/'"
        )));
    }
    Ok(Placement::Systemd {
        slice: if slice.is_empty() {
            "system.slice".into()
        } else {
            slice.into()
        },
        prefix: prefix.into(),
        name: name.into(),
    })
}

/// `a-b-c.slice` lives at `/a.slice/a-b.slice/a-b-c.slice` (systemd.slice(5)).
fn expand_slice(slice: &str) -> PathBuf {
    let mut path = PathBuf::from("/");
    if slice == "-.slice" {
        return path;
    }
    let stem = slice.trim_end_matches(".slice");
    let mut acc = String::new();
    for part in stem.split('-') {
        if !acc.is_empty() {
            acc.push('-');
        }
        acc.push_str(part);
        path.push(format!("{acc}.slice"));
    }
    path
}

fn scope_name(prefix: &str, name: &str) -> String {
    if name.ends_with(".slice") {
        name.to_string()
    } else if prefix.is_empty() {
        format!("{name}.scope")
    } else {
        format!("{prefix}-{name}.scope")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fs(p: Option<&str>) -> Result<Placement, CgroupError> {
        Placement::resolve(p.map(Path::new), "c1", false)
    }

    #[test]
    fn default_is_under_berth() {
        assert_eq!(fs(None).unwrap().path(), Path::new("/berth/c1"));
    }

    #[test]
    fn absolute_and_relative() {
        assert_eq!(fs(Some("/x/y")).unwrap().path(), Path::new("/x/y"));
        assert_eq!(fs(Some("x/./y")).unwrap().path(), Path::new("/berth/x/y"));
    }

    #[test]
    fn rejects_escape_and_root() {
        let e = fs(Some("/x/../../etc")).unwrap_err().to_string();
        assert!(e.starts_with("linux.cgroupsPath: "), "{e}");
        assert!(fs(Some("/")).is_err());
        assert!(fs(Some("system.slice:a:b")).is_err());
    }

    #[test]
    fn systemd_paths() {
        let p = Placement::resolve(Some(Path::new("a-b.slice:docker:c1")), "c1", true).unwrap();
        assert_eq!(p.path(), Path::new("/a.slice/a-b.slice/docker-c1.scope"));
        assert_eq!(p.spelled(), "a-b.slice:docker:c1");
        let d = Placement::resolve(None, "c1", true).unwrap();
        assert_eq!(d.path(), Path::new("/system.slice/berth-c1.scope"));
        for bad in ["/x/y", "a:b", "notaslice:p:n", "system.slice:p:"] {
            let e = Placement::resolve(Some(Path::new(bad)), "c1", true).unwrap_err();
            assert!(e.to_string().starts_with("linux.cgroupsPath: "), "{e}");
        }
    }
}
