//! The process `exec` runs: the container's own `process` edited by runc's
//! flags, or a complete one from `--process FILE`, checked as config
//! validation checks the init's.

use std::path::{Path, PathBuf};

use oci_spec::runtime::Process;

use crate::error::{Error, Result};

/// Changes `exec` makes to the container's own `process` (runc's flags).
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub args: Vec<String>,
    pub cwd: Option<PathBuf>,
    pub env: Vec<String>,
    pub tty: bool,
    /// `uid[:gid]`
    pub user: Option<String>,
    pub additional_gids: Vec<u32>,
    pub caps: Vec<String>,
    pub no_new_privs: bool,
    pub apparmor: Option<String>,
    pub process_label: Option<String>,
}

/// The container's own `process` from config.json with `o` applied, as
/// runc builds it: args replaced, env appended, capabilities added to the
/// bounding, effective and permitted sets (and ambient when the config has
/// inheritable ones), terminal only with `--tty`.
pub fn process_from_config(spec: &oci_spec::runtime::Spec, o: &Overrides) -> Result<Process> {
    let mut p = spec
        .process()
        .clone()
        .ok_or_else(|| Error::config("process", "required"))?;
    if o.args.is_empty() {
        return Err(Error::Other(
            "exec: no command given (ARGS or --process)".into(),
        ));
    }
    p.set_args(Some(o.args.clone()));
    if let Some(cwd) = &o.cwd {
        p.set_cwd(cwd.clone());
    }
    if !o.env.is_empty() {
        let mut env = p.env().clone().unwrap_or_default();
        env.extend(o.env.iter().cloned());
        p.set_env(Some(env));
    }
    p.set_terminal(Some(o.tty));
    if let Some(user) = &o.user {
        let (uid, gid) = parse_user(user)?;
        p.user_mut().set_uid(uid);
        if let Some(gid) = gid {
            p.user_mut().set_gid(gid);
        }
    }
    if !o.additional_gids.is_empty() {
        let mut gids = p.user().additional_gids().clone().unwrap_or_default();
        gids.extend(&o.additional_gids);
        p.user_mut().set_additional_gids(Some(gids));
    }
    if !o.caps.is_empty() {
        add_caps(&mut p, &o.caps)?;
    }
    if o.no_new_privs {
        p.set_no_new_privileges(Some(true));
    }
    if let Some(a) = &o.apparmor {
        p.set_apparmor_profile(Some(a.clone()));
    }
    if let Some(l) = &o.process_label {
        p.set_selinux_label(Some(l.clone()));
    }
    Ok(p)
}

/// `--process FILE`: a complete process, replacing the config's.
pub fn load_process(path: &Path) -> Result<Process> {
    let raw = std::fs::read(path).map_err(|e| Error::io("read", path, e))?;
    let de = &mut serde_json::Deserializer::from_slice(&raw);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let field = match e.path().to_string() {
            p if p == "." => "process".to_string(),
            p => format!("process.{p}"),
        };
        let inner = e.into_inner().to_string();
        let msg = crate::config::unknown_capability(&field, &inner).unwrap_or(inner);
        Error::config(field, format!("{}: {msg}", path.display()))
    })
}

fn parse_user(s: &str) -> Result<(u32, Option<u32>)> {
    let bad = |what: &str| Error::config("--user", format!("{s:?}: bad {what} (want uid[:gid])"));
    let (u, g) = match s.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (s, None),
    };
    let uid = u.parse().map_err(|_| bad("uid"))?;
    let gid = g.map(|g| g.parse().map_err(|_| bad("gid"))).transpose()?;
    Ok((uid, gid))
}

fn add_caps(p: &mut Process, names: &[String]) -> Result<()> {
    use oci_spec::runtime::Capability;
    let mut caps = p.capabilities().clone().unwrap_or_default();
    for name in names {
        let c: Capability = serde_json::from_value(serde_json::Value::String(name.clone()))
            .map_err(|_| Error::config("--cap", format!("unknown capability {name:?}")))?;
        let add = |set: &Option<oci_spec::runtime::Capabilities>| {
            let mut s = set.clone().unwrap_or_default();
            s.insert(c);
            Some(s)
        };
        caps.set_bounding(add(caps.bounding()));
        caps.set_effective(add(caps.effective()));
        caps.set_permitted(add(caps.permitted()));
        if caps.inheritable().as_ref().is_some_and(|i| !i.is_empty()) {
            caps.set_ambient(add(caps.ambient()));
        }
    }
    p.set_capabilities(Some(caps));
    Ok(())
}

/// What config validation checks for the init, for a process that did not
/// come from config.json.
pub(super) fn check_process(p: &Process) -> Result<()> {
    if p.args().as_ref().is_none_or(|a| a.is_empty()) {
        return Err(Error::config("process.args", "must not be empty"));
    }
    if !p.cwd().is_absolute() {
        return Err(Error::config(
            "process.cwd",
            format!("{:?} must be absolute", p.cwd()),
        ));
    }
    for (i, e) in p.env().iter().flatten().enumerate() {
        if !e.contains('=') {
            return Err(Error::config(
                format!("process.env[{i}]"),
                format!("{e:?} is not KEY=VALUE"),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> oci_spec::runtime::Spec {
        let raw = br#"{"ociVersion":"1.2.0","root":{"path":"rootfs"},
            "process":{"args":["sleep","9"],"cwd":"/","env":["A=1"],
              "user":{"uid":0,"gid":0,"additionalGids":[5]},
              "capabilities":{"bounding":["CAP_KILL"],"effective":["CAP_KILL"],
                "permitted":["CAP_KILL"]}}}"#;
        crate::config::parse(raw).unwrap()
    }

    #[test]
    fn overrides_apply_like_runc() {
        let o = Overrides {
            args: vec!["sh".into(), "-c".into(), "id".into()],
            cwd: Some("/tmp".into()),
            env: vec!["B=2".into()],
            tty: true,
            user: Some("1000:1001".into()),
            additional_gids: vec![7],
            caps: vec!["CAP_NET_RAW".into()],
            no_new_privs: true,
            ..Default::default()
        };
        let p = process_from_config(&spec(), &o).unwrap();
        assert_eq!(p.args().as_ref().unwrap(), &o.args);
        assert_eq!(p.cwd(), Path::new("/tmp"));
        assert_eq!(p.env().as_ref().unwrap(), &["A=1", "B=2"]);
        assert_eq!(p.terminal(), Some(true));
        assert_eq!((p.user().uid(), p.user().gid()), (1000, 1001));
        assert_eq!(p.user().additional_gids().as_ref().unwrap(), &[5, 7]);
        let caps = p.capabilities().as_ref().unwrap();
        let raw = oci_spec::runtime::Capability::NetRaw;
        assert!(caps.bounding().as_ref().unwrap().contains(&raw));
        assert!(caps.effective().as_ref().unwrap().contains(&raw));
        assert!(caps.permitted().as_ref().unwrap().contains(&raw));
        assert!(caps.ambient().is_none(), "no inheritable set: no ambient");
        assert_eq!(p.no_new_privileges(), Some(true));
    }

    #[test]
    fn user_only_keeps_gid() {
        let o = Overrides {
            args: vec!["id".into()],
            user: Some("33".into()),
            ..Default::default()
        };
        let p = process_from_config(&spec(), &o).unwrap();
        assert_eq!((p.user().uid(), p.user().gid()), (33, 0));
        assert_eq!(p.terminal(), Some(false));
    }

    #[test]
    fn rejects_bad_overrides() {
        let with = |f: fn(&mut Overrides)| {
            let mut o = Overrides {
                args: vec!["id".into()],
                ..Default::default()
            };
            f(&mut o);
            process_from_config(&spec(), &o).unwrap_err().to_string()
        };
        assert!(with(|o| o.args.clear()).contains("no command"));
        assert!(with(|o| o.user = Some("x".into())).contains("--user"));
        assert!(with(|o| o.user = Some("1:y".into())).contains("bad gid"));
        assert!(with(|o| o.caps = vec!["CAP_NOPE".into()]).contains("--cap"));
    }
}
