//! What `berth update` puts into effect: `--resources FILE|-` (OCI
//! LinuxResources JSON) and runc's flags, as one `LinuxResources`.

use oci_spec::runtime::LinuxResources;
use serde_json::{json, Map, Value};

use super::CgroupError;

/// runc's `update` flags; a `None` leaves the value as it is.
#[derive(Debug, Default, Clone)]
pub struct UpdateFlags {
    pub memory: Option<String>,
    pub memory_swap: Option<String>,
    pub memory_reservation: Option<String>,
    pub cpu_shares: Option<u64>,
    pub cpu_quota: Option<i64>,
    pub cpu_period: Option<u64>,
    pub cpuset_cpus: Option<String>,
    pub cpuset_mems: Option<String>,
    pub pids_limit: Option<i64>,
    pub blkio_weight: Option<u16>,
}

fn bad(field: &str, msg: String) -> CgroupError {
    CgroupError::Config {
        field: field.into(),
        msg,
    }
}

/// Parse LinuxResources JSON; errors name the field (`linux.resources.memory.limit: ...`).
pub fn parse_resources(text: &str) -> Result<LinuxResources, CgroupError> {
    let de = &mut serde_json::Deserializer::from_str(text);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let field = if path == "." || path.is_empty() {
            "linux.resources".to_string()
        } else {
            format!("linux.resources.{path}")
        };
        bad(&field, e.inner().to_string())
    })
}

/// A byte count as runc takes it: `-1`, `1048576`, `512k`, `64m`, `1g` (binary units).
pub fn parse_bytes(field: &str, s: &str) -> Result<i64, CgroupError> {
    let t = s.trim().to_ascii_lowercase();
    if t == "-1" {
        return Ok(-1);
    }
    let t = t.trim_end_matches('b');
    let (num, mult) = match t.chars().last() {
        Some('k') => (&t[..t.len() - 1], 1i64 << 10),
        Some('m') => (&t[..t.len() - 1], 1 << 20),
        Some('g') => (&t[..t.len() - 1], 1 << 30),
        Some('t') => (&t[..t.len() - 1], 1 << 40),
        _ => (t, 1),
    };
    num.trim()
        .parse::<i64>()
        .ok()
        .filter(|n| *n >= 0)
        .and_then(|n| n.checked_mul(mult))
        .ok_or_else(|| {
            bad(
                field,
                format!("{s:?} is not a size like 1048576, 512k or 64m"),
            )
        })
}

/// The flags as LinuxResources JSON, only the fields that were given.
fn flags_json(f: &UpdateFlags) -> Result<Value, CgroupError> {
    let mut memory = Map::new();
    let bytes = [
        ("limit", "--memory", &f.memory),
        ("swap", "--memory-swap", &f.memory_swap),
        ("reservation", "--memory-reservation", &f.memory_reservation),
    ];
    for (key, flag, v) in bytes {
        if let Some(v) = v {
            memory.insert(key.into(), json!(parse_bytes(flag, v)?));
        }
    }
    let mut cpu = Map::new();
    let mut put = |k: &str, v: Option<Value>| {
        if let Some(v) = v {
            cpu.insert(k.into(), v);
        }
    };
    put("shares", f.cpu_shares.map(|v| json!(v)));
    put("quota", f.cpu_quota.map(|v| json!(v)));
    put("period", f.cpu_period.map(|v| json!(v)));
    put("cpus", f.cpuset_cpus.as_ref().map(|v| json!(v)));
    put("mems", f.cpuset_mems.as_ref().map(|v| json!(v)));
    let mut r = Map::new();
    if !memory.is_empty() {
        r.insert("memory".into(), Value::Object(memory));
    }
    if !cpu.is_empty() {
        r.insert("cpu".into(), Value::Object(cpu));
    }
    if let Some(l) = f.pids_limit {
        r.insert("pids".into(), json!({ "limit": l }));
    }
    if let Some(w) = f.blkio_weight {
        r.insert("blockIO".into(), json!({ "weight": w }));
    }
    Ok(Value::Object(r))
}

/// Objects merge key by key, anything else is replaced by `over`.
fn merge(base: &mut Value, over: Value) {
    match (base, over) {
        (Value::Object(b), Value::Object(o)) => {
            for (k, v) in o {
                merge(b.entry(k).or_insert(Value::Null), v);
            }
        }
        (b, o) => *b = o,
    }
}

/// The resources `update` applies: `file` (if given), then the flags on top,
/// keeping the container's device rules (`devices`), which on cgroup v2 are
/// one eBPF program that is rebuilt whole on every update.
pub fn resources_for_update(
    file: Option<&LinuxResources>,
    flags: &UpdateFlags,
    devices: Option<&LinuxResources>,
) -> Result<LinuxResources, CgroupError> {
    let ser = |r: &LinuxResources| {
        serde_json::to_value(r).map_err(|e| bad("linux.resources", e.to_string()))
    };
    let mut v = json!({});
    if let Some(d) = devices.and_then(|d| d.devices().as_ref()) {
        v["devices"] =
            serde_json::to_value(d).map_err(|e| bad("linux.resources", e.to_string()))?;
    }
    if let Some(f) = file {
        merge(&mut v, ser(f)?);
    }
    merge(&mut v, flags_json(flags)?);
    parse_resources(&v.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_bytes("--memory", "-1").unwrap(), -1);
        assert_eq!(parse_bytes("--memory", "4096").unwrap(), 4096);
        assert_eq!(parse_bytes("--memory", "512k").unwrap(), 512 << 10);
        assert_eq!(parse_bytes("--memory", "64M").unwrap(), 64 << 20);
        assert_eq!(parse_bytes("--memory", "1gb").unwrap(), 1 << 30);
        let e = parse_bytes("--memory", "-5").unwrap_err().to_string();
        assert!(e.starts_with("--memory: "), "{e}");
        assert!(parse_bytes("--memory", "lots").is_err());
    }

    #[test]
    fn flags_override_file_and_keep_devices() {
        let file =
            parse_resources(r#"{"memory":{"limit":1000000,"swap":2000000},"pids":{"limit":5}}"#)
                .unwrap();
        let base = parse_resources(r#"{"devices":[{"allow":false,"access":"rwm"}]}"#).unwrap();
        let flags = UpdateFlags {
            memory: Some("2m".into()),
            cpu_quota: Some(20000),
            ..Default::default()
        };
        let r = resources_for_update(Some(&file), &flags, Some(&base)).unwrap();
        let m = r.memory().as_ref().unwrap();
        assert_eq!(m.limit(), Some(2 << 20));
        assert_eq!(m.swap(), Some(2000000));
        assert_eq!(r.pids().as_ref().unwrap().limit(), 5);
        assert_eq!(r.cpu().as_ref().unwrap().quota(), Some(20000));
        assert_eq!(r.devices().as_ref().unwrap().len(), 1);
    }

    #[test]
    fn json_errors_name_the_field() {
        let e = parse_resources(r#"{"memory":{"limit":"x"}}"#)
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("linux.resources.memory.limit: "), "{e}");
        let e = parse_resources(r#"{"devices":[{"allow":true,"type":"x"}]}"#)
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("linux.resources.devices[0].type: "), "{e}");
    }
}
