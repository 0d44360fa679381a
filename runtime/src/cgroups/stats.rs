//! `events --stats` data in runc's JSON shape (runc `types/events.go`), built
//! from libcgroups' statistics. Go's `omitempty` on a number drops zeros;
//! `skip_serializing_if = "zero"` does the same here.

use std::collections::{BTreeMap, HashMap};

use libcgroups::stats::{BlkioDeviceStat, MemoryData, Stats as LibStats};
use serde::Serialize;

fn zero(v: &u64) -> bool {
    *v == 0
}

#[derive(Debug, Default, Serialize)]
pub struct Stats {
    pub cpu: Cpu,
    pub cpuset: BTreeMap<String, serde_json::Value>,
    pub memory: Memory,
    pub pids: Pids,
    pub blkio: Blkio,
    pub hugetlb: BTreeMap<String, Hugetlb>,
    pub intel_rdt: BTreeMap<String, serde_json::Value>,
    pub network_interfaces: Option<Vec<serde_json::Value>>,
}

#[derive(Debug, Default, Serialize)]
pub struct Cpu {
    pub usage: CpuUsage,
    pub throttling: Throttling,
}

#[derive(Debug, Default, Serialize)]
pub struct CpuUsage {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub percpu: Vec<u64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub percpu_kernel: Vec<u64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub percpu_user: Vec<u64>,
    #[serde(skip_serializing_if = "zero")]
    pub total: u64,
    pub kernel: u64,
    pub user: u64,
}

#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Throttling {
    #[serde(skip_serializing_if = "zero")]
    pub periods: u64,
    #[serde(skip_serializing_if = "zero")]
    pub throttled_periods: u64,
    #[serde(skip_serializing_if = "zero")]
    pub throttled_time: u64,
}

#[derive(Debug, Default, Serialize)]
pub struct Memory {
    #[serde(skip_serializing_if = "zero")]
    pub cache: u64,
    pub usage: MemoryEntry,
    pub swap: MemoryEntry,
    pub kernel: MemoryEntry,
    #[serde(rename = "kernelTCP")]
    pub kernel_tcp: MemoryEntry,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub raw: BTreeMap<String, u64>,
}

#[derive(Debug, Default, Serialize)]
pub struct MemoryEntry {
    pub limit: u64,
    #[serde(skip_serializing_if = "zero")]
    pub usage: u64,
    #[serde(skip_serializing_if = "zero")]
    pub max: u64,
    pub failcnt: u64,
}

#[derive(Debug, Default, Serialize)]
pub struct Pids {
    #[serde(skip_serializing_if = "zero")]
    pub current: u64,
    #[serde(skip_serializing_if = "zero")]
    pub limit: u64,
}

#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Blkio {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub io_service_bytes_recursive: Vec<BlkioEntry>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub io_serviced_recursive: Vec<BlkioEntry>,
    #[serde(rename = "ioQueueRecursive", skip_serializing_if = "Vec::is_empty")]
    pub io_queued_recursive: Vec<BlkioEntry>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub io_service_time_recursive: Vec<BlkioEntry>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub io_wait_time_recursive: Vec<BlkioEntry>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub io_merged_recursive: Vec<BlkioEntry>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub io_time_recursive: Vec<BlkioEntry>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub sectors_recursive: Vec<BlkioEntry>,
}

#[derive(Debug, Default, Serialize)]
pub struct BlkioEntry {
    #[serde(skip_serializing_if = "zero")]
    pub major: u64,
    #[serde(skip_serializing_if = "zero")]
    pub minor: u64,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub op: String,
    #[serde(skip_serializing_if = "zero")]
    pub value: u64,
}

#[derive(Debug, Default, Serialize)]
pub struct Hugetlb {
    #[serde(skip_serializing_if = "zero")]
    pub usage: u64,
    #[serde(skip_serializing_if = "zero")]
    pub max: u64,
    pub failcnt: u64,
}

fn entry(d: &MemoryData) -> MemoryEntry {
    MemoryEntry {
        limit: d.limit,
        usage: d.usage,
        max: d.max_usage,
        failcnt: d.fail_count,
    }
}

fn blkio(list: &[BlkioDeviceStat]) -> Vec<BlkioEntry> {
    list.iter()
        .map(|s| BlkioEntry {
            major: s.major,
            minor: s.minor,
            op: s.op_type.clone().unwrap_or_default(),
            value: s.value,
        })
        .collect()
}

fn sorted(map: &HashMap<String, u64>) -> BTreeMap<String, u64> {
    map.iter().map(|(k, v)| (k.clone(), *v)).collect()
}

impl Stats {
    /// `v2` times come in microseconds; runc reports nanoseconds everywhere.
    pub(crate) fn from_lib(s: &LibStats, v2: bool) -> Stats {
        let t = if v2 { 1000 } else { 1 };
        let u = &s.cpu.usage;
        Stats {
            cpu: Cpu {
                usage: CpuUsage {
                    percpu: u.per_core_usage_total.clone(),
                    percpu_kernel: u.per_core_usage_kernel.clone(),
                    percpu_user: u.per_core_usage_user.clone(),
                    total: u.usage_total * t,
                    kernel: u.usage_kernel * t,
                    user: u.usage_user * t,
                },
                throttling: Throttling {
                    periods: s.cpu.throttling.periods,
                    throttled_periods: s.cpu.throttling.throttled_periods,
                    throttled_time: s.cpu.throttling.throttled_time * t,
                },
            },
            memory: Memory {
                cache: s.memory.cache,
                usage: entry(&s.memory.memory),
                swap: entry(&s.memory.memswap),
                kernel: entry(&s.memory.kernel),
                kernel_tcp: entry(&s.memory.kernel_tcp),
                raw: sorted(&s.memory.stats),
            },
            pids: Pids {
                current: s.pids.current,
                limit: s.pids.limit,
            },
            blkio: Blkio {
                io_service_bytes_recursive: blkio(&s.blkio.service_bytes),
                io_serviced_recursive: blkio(&s.blkio.serviced),
                io_queued_recursive: blkio(&s.blkio.queued),
                io_service_time_recursive: blkio(&s.blkio.service_time),
                io_wait_time_recursive: blkio(&s.blkio.wait_time),
                io_merged_recursive: blkio(&s.blkio.merged),
                io_time_recursive: blkio(&s.blkio.time),
                sectors_recursive: blkio(&s.blkio.sectors),
            },
            hugetlb: s
                .hugetlb
                .iter()
                .map(|(k, h)| {
                    (
                        k.clone(),
                        Hugetlb {
                            usage: h.usage,
                            max: h.max_usage,
                            failcnt: h.fail_count,
                        },
                    )
                })
                .collect(),
            ..Default::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runc_shape() {
        let mut lib = LibStats::default();
        lib.cpu.usage.usage_total = 7;
        lib.pids.current = 3;
        lib.memory.memory.limit = 1 << 20;
        let v = serde_json::to_value(Stats::from_lib(&lib, true)).unwrap();
        assert_eq!(v["cpu"]["usage"]["total"], 7000);
        assert_eq!(v["cpu"]["usage"]["kernel"], 0);
        assert_eq!(v["pids"]["current"], 3);
        assert!(v["pids"].get("limit").is_none());
        assert_eq!(v["memory"]["usage"]["limit"], 1 << 20);
        assert_eq!(v["memory"]["usage"]["failcnt"], 0);
        assert!(v["network_interfaces"].is_null());
        assert!(v["hugetlb"].is_object());
    }
}
