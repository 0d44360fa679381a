//! Checks `linux.resources` before anything is written, so a bad value fails
//! with the field's name and leaves the cgroup as it was.

use std::path::Path;

use oci_spec::runtime::{LinuxDeviceType, LinuxResources, LinuxThrottleDevice};

use super::hierarchy::Hierarchy;
use super::CgroupError;

const R: &str = "linux.resources";

fn bad(field: impl Into<String>, msg: impl Into<String>) -> CgroupError {
    CgroupError::Config {
        field: field.into(),
        msg: msg.into(),
    }
}

fn need(h: &Hierarchy, controller: &str, field: &str) -> Result<(), CgroupError> {
    if h.has(controller) {
        Ok(())
    } else {
        Err(bad(
            field,
            format!("the {controller} cgroup controller is not available on this host"),
        ))
    }
}

/// -1 means unlimited; anything below is a mistake.
fn limit(field: String, v: Option<i64>) -> Result<(), CgroupError> {
    match v {
        Some(v) if v < -1 => Err(bad(field, format!("{v} is negative (-1 means unlimited)"))),
        _ => Ok(()),
    }
}

pub(crate) fn check(r: &LinuxResources, h: &Hierarchy) -> Result<(), CgroupError> {
    memory(r, h)?;
    cpu(r, h)?;
    if let Some(p) = r.pids() {
        limit(format!("{R}.pids.limit"), Some(p.limit()))?;
        need(h, "pids", &format!("{R}.pids"))?;
    }
    block_io(r, h)?;
    hugepages(r, h)?;
    network(r, h)?;
    devices(r, h)?;
    if let Some(rdma) = r.rdma() {
        if !rdma.is_empty() {
            need(h, "rdma", &format!("{R}.rdma"))?;
        }
        for name in rdma.keys() {
            if name.is_empty() || name.contains(char::is_whitespace) {
                return Err(bad(
                    format!("{R}.rdma"),
                    format!("bad device name {name:?}"),
                ));
            }
        }
    }
    unified(r, h)
}

fn memory(r: &LinuxResources, h: &Hierarchy) -> Result<(), CgroupError> {
    let Some(m) = r.memory() else { return Ok(()) };
    let f = |n: &str| format!("{R}.memory.{n}");
    limit(f("limit"), m.limit())?;
    limit(f("reservation"), m.reservation())?;
    limit(f("swap"), m.swap())?;
    limit(f("kernel"), m.kernel())?;
    limit(f("kernelTCP"), m.kernel_tcp())?;
    if let (Some(l), Some(s)) = (m.limit(), m.swap()) {
        if l > 0 && s > 0 && s < l {
            return Err(bad(
                f("swap"),
                format!("{s} is below memory.limit {l} (swap counts memory + swap)"),
            ));
        }
    }
    if let Some(s) = m.swappiness() {
        if s > 100 {
            return Err(bad(f("swappiness"), format!("{s} is not in 0..=100")));
        }
    }
    let any = m.limit().is_some()
        || m.reservation().is_some()
        || m.swap().is_some()
        || m.swappiness().is_some()
        || m.disable_oom_killer() == Some(true);
    if any {
        need(h, "memory", &format!("{R}.memory"))?;
    }
    Ok(())
}

fn cpu(r: &LinuxResources, h: &Hierarchy) -> Result<(), CgroupError> {
    let Some(c) = r.cpu() else { return Ok(()) };
    let f = |n: &str| format!("{R}.cpu.{n}");
    if let Some(q) = c.quota() {
        if q < -1 || (0..1000).contains(&q) && q != 0 {
            return Err(bad(
                f("quota"),
                format!("{q} must be -1 or at least 1000 (µs)"),
            ));
        }
    }
    if let Some(p) = c.period() {
        if p != 0 && !(1000..=1_000_000).contains(&p) {
            return Err(bad(
                f("period"),
                format!("{p} is not in 1000..=1000000 (µs)"),
            ));
        }
    }
    if let Some(s) = c.shares() {
        if s != 0 && !(2..=262_144).contains(&s) {
            return Err(bad(f("shares"), format!("{s} is not in 2..=262144")));
        }
    }
    limit(f("realtimeRuntime"), c.realtime_runtime())?;
    if let Some(i) = c.idle() {
        if !(0..=1).contains(&i) {
            return Err(bad(f("idle"), format!("{i} must be 0 or 1")));
        }
    }
    for (name, v) in [("cpus", c.cpus()), ("mems", c.mems())] {
        if let Some(list) = v {
            if !is_cpu_list(list) {
                return Err(bad(
                    f(name),
                    format!("{list:?} is not a list like \"0-2,4\""),
                ));
            }
            need(h, "cpuset", &f(name))?;
        }
    }
    let rt = c.realtime_runtime().is_some() || c.realtime_period().is_some();
    if rt && h.is_v2() {
        return Err(bad(
            f("realtimeRuntime"),
            "realtime scheduling limits need cgroup v1 (cgroup v2 has no cpu.rt_*)",
        ));
    }
    let any = c.shares().is_some()
        || c.quota().is_some()
        || c.period().is_some()
        || c.burst().is_some()
        || c.idle().is_some()
        || rt;
    if any {
        need(h, "cpu", &format!("{R}.cpu"))?;
    }
    Ok(())
}

fn is_cpu_list(s: &str) -> bool {
    let s = s.trim();
    s.is_empty()
        || s.split(',').all(|part| {
            let mut it = part.splitn(2, '-');
            let a = it.next().map(|a| a.parse::<u32>().ok());
            let b = it.next().map(|b| b.parse::<u32>().ok());
            match (a, b) {
                (Some(Some(_)), None) => true,
                (Some(Some(a)), Some(Some(b))) => a <= b,
                _ => false,
            }
        })
}

fn block_io(r: &LinuxResources, h: &Hierarchy) -> Result<(), CgroupError> {
    let Some(b) = r.block_io() else { return Ok(()) };
    let f = |n: &str| format!("{R}.blockIO.{n}");
    let weight = |field: String, w: Option<u16>| match w {
        Some(w) if w != 0 && !(10..=1000).contains(&w) => {
            Err(bad(field, format!("{w} is not in 10..=1000")))
        }
        _ => Ok(()),
    };
    weight(f("weight"), b.weight())?;
    weight(f("leafWeight"), b.leaf_weight())?;
    for (i, d) in b.weight_device().iter().flatten().enumerate() {
        weight(format!("{R}.blockIO.weightDevice[{i}].weight"), d.weight())?;
        weight(
            format!("{R}.blockIO.weightDevice[{i}].leafWeight"),
            d.leaf_weight(),
        )?;
        device_numbers(
            &format!("{R}.blockIO.weightDevice[{i}]"),
            d.major(),
            d.minor(),
        )?;
    }
    let throttles: [(&str, &Option<Vec<LinuxThrottleDevice>>); 4] = [
        ("throttleReadBpsDevice", b.throttle_read_bps_device()),
        ("throttleWriteBpsDevice", b.throttle_write_bps_device()),
        ("throttleReadIOPSDevice", b.throttle_read_iops_device()),
        ("throttleWriteIOPSDevice", b.throttle_write_iops_device()),
    ];
    for (name, list) in throttles {
        for (i, d) in list.iter().flatten().enumerate() {
            device_numbers(&format!("{R}.blockIO.{name}[{i}]"), d.major(), d.minor())?;
        }
    }
    need(
        h,
        if h.is_v2() { "io" } else { "blkio" },
        &format!("{R}.blockIO"),
    )
}

fn device_numbers(field: &str, major: i64, minor: i64) -> Result<(), CgroupError> {
    if major < 0 || minor < 0 {
        return Err(bad(
            field,
            format!("device {major}:{minor} has a negative number"),
        ));
    }
    Ok(())
}

fn hugepages(r: &LinuxResources, h: &Hierarchy) -> Result<(), CgroupError> {
    for (i, l) in r.hugepage_limits().iter().flatten().enumerate() {
        let field = format!("{R}.hugepageLimits[{i}]");
        let kb = page_size_kb(l.page_size()).ok_or_else(|| {
            bad(
                format!("{field}.pageSize"),
                format!("{:?} is not a size like \"2MB\" or \"1GB\"", l.page_size()),
            )
        })?;
        let sys = format!("/sys/kernel/mm/hugepages/hugepages-{kb}kB");
        if !Path::new(&sys).exists() {
            return Err(bad(
                format!("{field}.pageSize"),
                format!("{} pages are not supported by this kernel", l.page_size()),
            ));
        }
        limit(format!("{field}.limit"), Some(l.limit()))?;
        need(h, "hugetlb", &field)?;
    }
    Ok(())
}

fn page_size_kb(s: &str) -> Option<u64> {
    let digits = s.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let n: u64 = digits.parse().ok()?;
    let mult = match &s[digits.len()..] {
        "KB" | "kB" => 1,
        "MB" => 1024,
        "GB" => 1024 * 1024,
        _ => return None,
    };
    Some(n * mult)
}

fn network(r: &LinuxResources, h: &Hierarchy) -> Result<(), CgroupError> {
    let Some(n) = r.network() else { return Ok(()) };
    if h.is_v2() {
        // cgroup v2 has no net_cls/net_prio: like runc, these are not applied there.
        return Ok(());
    }
    if n.class_id().is_some() {
        need(h, "net_cls", &format!("{R}.network.classID"))?;
    }
    for (i, p) in n.priorities().iter().flatten().enumerate() {
        if p.name().is_empty() || p.name().contains(char::is_whitespace) {
            return Err(bad(
                format!("{R}.network.priorities[{i}].name"),
                format!("{:?} is not an interface name", p.name()),
            ));
        }
        need(h, "net_prio", &format!("{R}.network.priorities"))?;
    }
    Ok(())
}

fn devices(r: &LinuxResources, h: &Hierarchy) -> Result<(), CgroupError> {
    for (i, d) in r.devices().iter().flatten().enumerate() {
        let field = format!("{R}.devices[{i}]");
        if let Some(a) = d.access() {
            if a.is_empty() || !a.chars().all(|c| "rwm".contains(c)) {
                return Err(bad(
                    format!("{field}.access"),
                    format!("{a:?} must be made of r, w and m"),
                ));
            }
        }
        if matches!(d.typ(), Some(LinuxDeviceType::P)) {
            return Err(bad(
                format!("{field}.type"),
                "\"p\" (fifo) cannot be a device cgroup rule; use a, b or c",
            ));
        }
        for (n, v) in [("major", d.major()), ("minor", d.minor())] {
            if matches!(v, Some(v) if v < -1) {
                return Err(bad(format!("{field}.{n}"), "must not be negative"));
            }
        }
    }
    if r.devices().is_some() && !h.is_v2() {
        need(h, "devices", &format!("{R}.devices"))?;
    }
    Ok(())
}

fn unified(r: &LinuxResources, h: &Hierarchy) -> Result<(), CgroupError> {
    let Some(u) = r.unified() else { return Ok(()) };
    if u.is_empty() {
        return Ok(());
    }
    if !h.is_v2() {
        return Err(bad(
            format!("{R}.unified"),
            "needs a cgroup v2 host; this one has cgroup v1",
        ));
    }
    for key in u.keys() {
        let field = format!("{R}.unified.{key}");
        if key.contains('/') || key.starts_with('.') || !key.contains('.') {
            return Err(bad(field, "must be a file name like \"memory.high\""));
        }
        let controller = key.split('.').next().unwrap_or_default();
        if controller != "cgroup" && !h.has(controller) {
            return Err(bad(
                field,
                format!("the {controller} cgroup controller is not available on this host"),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn v1() -> Hierarchy {
        let mounts: BTreeMap<String, std::path::PathBuf> = ["memory", "pids", "cpu", "devices"]
            .iter()
            .map(|c| (c.to_string(), format!("/sys/fs/cgroup/{c}").into()))
            .collect();
        Hierarchy::V1 { mounts }
    }

    fn err(json: &str) -> String {
        let r: LinuxResources = serde_json::from_str(json).unwrap();
        check(&r, &v1()).unwrap_err().to_string()
    }

    #[test]
    fn names_the_field() {
        let e = err(r#"{"memory":{"limit":-5}}"#);
        assert!(e.starts_with("linux.resources.memory.limit: "), "{e}");
        let e = err(r#"{"memory":{"limit":2000000,"swap":1000000}}"#);
        assert!(e.starts_with("linux.resources.memory.swap: "), "{e}");
        let e = err(r#"{"memory":{"swappiness":101}}"#);
        assert!(e.starts_with("linux.resources.memory.swappiness: "), "{e}");
        let e = err(r#"{"cpu":{"quota":-7}}"#);
        assert!(e.starts_with("linux.resources.cpu.quota: "), "{e}");
        let e = err(r#"{"cpu":{"cpus":"1-a"}}"#);
        assert!(e.starts_with("linux.resources.cpu.cpus: "), "{e}");
        let e = err(r#"{"pids":{"limit":-2}}"#);
        assert!(e.starts_with("linux.resources.pids.limit: "), "{e}");
        let e = err(r#"{"devices":[{"allow":true,"access":"rwx"}]}"#);
        assert!(e.starts_with("linux.resources.devices[0].access: "), "{e}");
        let e = err(r#"{"hugepageLimits":[{"pageSize":"3XB","limit":1}]}"#);
        assert!(
            e.starts_with("linux.resources.hugepageLimits[0].pageSize: "),
            "{e}"
        );
        let e = err(r#"{"unified":{"memory.high":"1"}}"#);
        assert!(e.starts_with("linux.resources.unified: "), "{e}");
        let e = err(r#"{"blockIO":{"weight":5}}"#);
        assert!(e.starts_with("linux.resources.blockIO.weight: "), "{e}");
    }

    #[test]
    fn missing_controller_is_named() {
        let e = err(r#"{"network":{"classID":1}}"#);
        assert!(e.starts_with("linux.resources.network.classID: "), "{e}");
        assert!(e.contains("net_cls"), "{e}");
    }

    #[test]
    fn good_values_pass() {
        let r: LinuxResources = serde_json::from_str(
            r#"{"memory":{"limit":-1,"swap":-1},"cpu":{"quota":50000,"period":100000,"shares":512},
                "pids":{"limit":10},"devices":[{"allow":false,"access":"rwm"}]}"#,
        )
        .unwrap();
        check(&r, &v1()).unwrap();
    }

    #[test]
    fn cpu_lists() {
        for ok in ["0", "0-1", "0,2-3", ""] {
            assert!(is_cpu_list(ok), "{ok}");
        }
        for no in ["a", "1-", "3-1", "1,,2"] {
            assert!(!is_cpu_list(no), "{no}");
        }
    }
}
