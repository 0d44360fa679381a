//! Loading `config.json`: parse with field paths in every error, check the
//! spec version, then hand over to [`crate::validate`] for semantic checks.

use std::path::{Path, PathBuf};

use oci_spec::runtime::Spec;

use crate::error::{Error, Result};

/// The only major version of the runtime spec this runtime implements.
const SUPPORTED_MAJOR: u64 = 1;

/// A bundle whose config.json parsed and validated.
pub struct Bundle {
    /// Absolute bundle directory.
    pub dir: PathBuf,
    pub spec: Spec,
    /// Absolute path of the root filesystem.
    pub rootfs: PathBuf,
    /// The config exactly as read, kept in the state directory so later
    /// commands see the config the container was created with.
    pub raw: Vec<u8>,
}

impl Bundle {
    pub fn load(dir: &Path) -> Result<Bundle> {
        let dir = std::fs::canonicalize(dir).map_err(|e| Error::io("open bundle", dir, e))?;
        let path = dir.join("config.json");
        let raw = std::fs::read(&path).map_err(|e| Error::io("read", &path, e))?;
        let spec = parse(&raw)?;
        let rootfs = crate::validate::spec(&spec, &dir)?;
        Ok(Bundle {
            dir,
            spec,
            rootfs,
            raw,
        })
    }
}

/// Parse config.json bytes; the error names the JSON path of the bad field.
pub fn parse(raw: &[u8]) -> Result<Spec> {
    // Path tracking costs about as much as the parse itself: a config that
    // parses does not need it, one that does not is parsed again with it.
    if let Ok(spec) = serde_json::from_slice::<Spec>(raw) {
        check_version(spec.version())?;
        return Ok(spec);
    }
    let de = &mut serde_json::Deserializer::from_slice(raw);
    let spec: Spec = serde_path_to_error::deserialize(de).map_err(|e| {
        let field = e.path().to_string();
        let inner = e.into_inner();
        // serde_json appends " at line L column C"; keep it for syntax
        // errors (there is no field to name) and drop the field name for
        // type errors, where the path says more.
        let field = if field == "." {
            "config.json".to_string()
        } else {
            field
        };
        let msg =
            unknown_capability(&field, &inner.to_string()).unwrap_or_else(|| inner.to_string());
        Error::config(field, msg)
    })?;
    check_version(spec.version())?;
    Ok(spec)
}

/// oci-spec's capability deserializer says `no variant for CAP_FOO
/// (converted to FOO)`; say what is wrong instead.
pub(crate) fn unknown_capability(field: &str, msg: &str) -> Option<String> {
    if !field.starts_with("process.capabilities.") {
        return None;
    }
    let name = msg.strip_prefix("no variant for ")?.split(' ').next()?;
    Some(format!("unknown capability {name}"))
}

fn check_version(version: &str) -> Result<()> {
    if version.is_empty() {
        return Err(Error::config("ociVersion", "required"));
    }
    let major = version
        .split('.')
        .next()
        .and_then(|m| m.parse::<u64>().ok())
        .ok_or_else(|| {
            Error::config(
                "ociVersion",
                format!("{version:?} is not a semantic version"),
            )
        })?;
    if major != SUPPORTED_MAJOR {
        return Err(Error::config(
            "ociVersion",
            format!("{version} is not supported (berth implements runtime-spec 1.x)"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn minimal(version: &str) -> String {
        format!(
            r#"{{"ociVersion":"{version}","root":{{"path":"rootfs"}},"process":{{"cwd":"/","args":["sh"],"user":{{"uid":0,"gid":0}}}}}}"#
        )
    }

    #[test]
    fn accepts_every_1x_version() {
        for v in [
            "1.0.0",
            "1.0.2",
            "1.1.0",
            "1.2.0",
            "1.2.1",
            "1.3.0",
            "1.0.0-rc5",
        ] {
            parse(minimal(v).as_bytes()).unwrap_or_else(|e| panic!("{v}: {e}"));
        }
    }

    #[test]
    fn rejects_other_majors() {
        let err = parse(minimal("2.0.0").as_bytes()).unwrap_err().to_string();
        assert!(
            err.starts_with("ociVersion: 2.0.0 is not supported"),
            "{err}"
        );
    }

    #[test]
    fn type_errors_name_the_field() {
        let raw = r#"{"ociVersion":"1.0.0","process":{"cwd":"/","args":["sh"],"user":{"uid":"root","gid":0}}}"#;
        let err = parse(raw.as_bytes()).unwrap_err().to_string();
        assert!(err.starts_with("process.user.uid: invalid type"), "{err}");
    }

    #[test]
    fn unknown_namespace_names_the_field() {
        let raw =
            r#"{"ociVersion":"1.0.0","linux":{"namespaces":[{"type":"pid"},{"type":"bogus"}]}}"#;
        let err = parse(raw.as_bytes()).unwrap_err().to_string();
        assert!(
            err.starts_with("linux.namespaces[1].type: unknown variant"),
            "{err}"
        );
    }

    #[test]
    fn syntax_errors_say_where() {
        let err = parse(b"{\"ociVersion\": ").unwrap_err().to_string();
        assert!(
            err.starts_with("ociVersion: EOF while parsing a value at line 1"),
            "{err}"
        );
    }
}
