//! `Stats`: the runtime's `events --stats` (runc's JSON) turned into the
//! cgroups v1 `Metrics` message containerd and its CRI plugin decode
//! (`io.containerd.cgroups.v1.Metrics`, as containerd-shim-runc-v2 sends on
//! a v1 host).

use containerd_shim::protos::cgroups::metrics::{
    CPUStat, CPUUsage, MemoryEntry, MemoryStat, Metrics, PidsStat, Throttle,
};
use serde_json::Value;

pub fn from_runtime(event: &Value) -> Metrics {
    let d = event.get("data").unwrap_or(&Value::Null);
    let mut m = Metrics::new();

    let mut pids = PidsStat::new();
    pids.current = num(d, &["pids", "current"]);
    pids.limit = num(d, &["pids", "limit"]);
    m.pids = Some(pids).into();

    let mut usage = CPUUsage::new();
    usage.total = num(d, &["cpu", "usage", "total"]);
    usage.kernel = num(d, &["cpu", "usage", "kernel"]);
    usage.user = num(d, &["cpu", "usage", "user"]);
    usage.per_cpu = list(d, &["cpu", "usage", "percpu"]);
    let mut thr = Throttle::new();
    thr.periods = num(d, &["cpu", "throttling", "periods"]);
    thr.throttled_periods = num(d, &["cpu", "throttling", "throttledPeriods"]);
    thr.throttled_time = num(d, &["cpu", "throttling", "throttledTime"]);
    let mut cpu = CPUStat::new();
    cpu.usage = Some(usage).into();
    cpu.throttling = Some(thr).into();
    m.cpu = Some(cpu).into();

    let entry = |k: &str| {
        let mut e = MemoryEntry::new();
        e.limit = num(d, &["memory", k, "limit"]);
        e.usage = num(d, &["memory", k, "usage"]);
        e.max = num(d, &["memory", k, "max"]);
        e.failcnt = num(d, &["memory", k, "failcnt"]);
        e
    };
    let raw = |k: &str| num(d, &["memory", "raw", k]);
    let mut mem = MemoryStat::new();
    mem.usage = Some(entry("usage")).into();
    mem.swap = Some(entry("swap")).into();
    mem.kernel = Some(entry("kernel")).into();
    mem.kernel_tcp = Some(entry("kernelTCP")).into();
    mem.cache = num(d, &["memory", "cache"]);
    mem.rss = raw("rss");
    mem.rss_huge = raw("rss_huge");
    mem.mapped_file = raw("mapped_file");
    mem.dirty = raw("dirty");
    mem.writeback = raw("writeback");
    mem.pg_fault = raw("pgfault");
    mem.pg_maj_fault = raw("pgmajfault");
    mem.inactive_anon = raw("inactive_anon");
    mem.active_anon = raw("active_anon");
    mem.inactive_file = raw("inactive_file");
    mem.active_file = raw("active_file");
    mem.unevictable = raw("unevictable");
    mem.total_cache = raw("total_cache");
    mem.total_rss = raw("total_rss");
    mem.total_inactive_file = raw("total_inactive_file");
    mem.total_active_file = raw("total_active_file");
    mem.total_inactive_anon = raw("total_inactive_anon");
    mem.total_active_anon = raw("total_active_anon");
    m.memory = Some(mem).into();
    m
}

fn at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter().try_fold(v, |v, k| v.get(k))
}

fn num(v: &Value, path: &[&str]) -> u64 {
    at(v, path).and_then(Value::as_u64).unwrap_or(0)
}

fn list(v: &Value, path: &[&str]) -> Vec<u64> {
    at(v, path)
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_u64).collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runc_stats_json_maps_to_v1_metrics() {
        let ev = serde_json::json!({"type": "stats", "id": "x", "data": {
            "cpu": {"usage": {"total": 30, "kernel": 10, "user": 20, "percpu": [12, 18]},
                    "throttling": {"periods": 4, "throttledPeriods": 2, "throttledTime": 7}},
            "memory": {"cache": 5, "usage": {"limit": 100, "usage": 60, "max": 70, "failcnt": 1},
                       "kernelTCP": {"limit": 9, "failcnt": 0},
                       "raw": {"rss": 50, "total_inactive_file": 3}},
            "pids": {"current": 2, "limit": 64}}});
        let m = from_runtime(&ev);
        assert_eq!((m.pids.current, m.pids.limit), (2, 64));
        assert_eq!(m.cpu.usage.total, 30);
        assert_eq!(m.cpu.usage.per_cpu, vec![12, 18]);
        assert_eq!(m.cpu.throttling.throttled_periods, 2);
        assert_eq!(m.cpu.throttling.throttled_time, 7);
        assert_eq!(
            (
                m.memory.usage.usage,
                m.memory.usage.limit,
                m.memory.usage.max
            ),
            (60, 100, 70)
        );
        assert_eq!(m.memory.kernel_tcp.limit, 9);
        assert_eq!(
            (m.memory.cache, m.memory.rss, m.memory.total_inactive_file),
            (5, 50, 3)
        );
    }
}
