//! Naming the `linux.resources` field behind a libcgroups error, so a failed
//! write reads `linux.resources.cpu: ...` rather than a bare path.

use std::path::PathBuf;

use libcgroups::common::AnyManagerError;
use libcgroups::v1::manager::V1ManagerError;
use libcgroups::v2::manager::V2ManagerError;

/// The `linux.resources` field a libcgroups failure is about: from the error
/// variant, else from the cgroup file named in its message ("failed to write
/// X to PATH"), `dirs` being the cgroup's directories.
pub(crate) fn field_for(e: &AnyManagerError, dirs: &[PathBuf]) -> Option<&'static str> {
    field_of(e).or_else(|| field_in_message(&e.to_string(), dirs))
}

fn field_in_message(msg: &str, dirs: &[PathBuf]) -> Option<&'static str> {
    {
        dirs.iter().find_map(|d| {
            let at = msg.find(&format!("{}/", d.display()))?;
            let rest = &msg[at + d.as_os_str().len() + 1..];
            let file = rest.split([':', ' ', '/']).next()?;
            field_of_file(file)
        })
    }
}

fn field_of_file(file: &str) -> Option<&'static str> {
    let controller = file.split('.').next()?;
    Some(match controller {
        "memory" => "linux.resources.memory",
        "cpu" | "cpuset" => "linux.resources.cpu",
        "pids" => "linux.resources.pids",
        "io" | "blkio" => "linux.resources.blockIO",
        "hugetlb" => "linux.resources.hugepageLimits",
        "devices" => "linux.resources.devices",
        "net_cls" => "linux.resources.network.classID",
        "net_prio" => "linux.resources.network.priorities",
        "rdma" => "linux.resources.rdma",
        _ => return None,
    })
}

/// Which `linux.resources` field a libcgroups failure is about.
fn field_of(e: &AnyManagerError) -> Option<&'static str> {
    use libcgroups::v1::ControllerType as C1;
    Some(match e {
        AnyManagerError::V1(e) => match e {
            V1ManagerError::BlkioController(_) => "linux.resources.blockIO",
            V1ManagerError::CpuController(_) => "linux.resources.cpu",
            V1ManagerError::CpuSetController(_) => "linux.resources.cpu",
            V1ManagerError::HugeTlbController(_) => "linux.resources.hugepageLimits",
            V1ManagerError::MemoryController(_) => "linux.resources.memory",
            V1ManagerError::PidsController(_) => "linux.resources.pids",
            V1ManagerError::CGroupRequired(c) => match c {
                C1::Cpu | C1::CpuAcct | C1::CpuSet => "linux.resources.cpu",
                C1::Devices => "linux.resources.devices",
                C1::HugeTlb => "linux.resources.hugepageLimits",
                C1::Memory => "linux.resources.memory",
                C1::Pids => "linux.resources.pids",
                C1::Blkio => "linux.resources.blockIO",
                C1::NetworkPriority => "linux.resources.network.priorities",
                C1::NetworkClassifier => "linux.resources.network.classID",
                C1::PerfEvent | C1::Freezer => return None,
            },
            _ => return None,
        },
        AnyManagerError::V2(e) => match e {
            V2ManagerError::CpuController(_) | V2ManagerError::CpuSetController(_) => {
                "linux.resources.cpu"
            }
            V2ManagerError::HugeTlbController(_) => "linux.resources.hugepageLimits",
            V2ManagerError::IoController(_) => "linux.resources.blockIO",
            V2ManagerError::MemoryController(_) => "linux.resources.memory",
            V2ManagerError::PidsController(_) => "linux.resources.pids",
            V2ManagerError::UnifiedController(_) => "linux.resources.unified",
            #[cfg(feature = "cgroupsv2-devices")]
            V2ManagerError::DevicesController(_) => "linux.resources.devices",
            _ => return None,
        },
        AnyManagerError::Systemd(_) => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_in_message_names_the_field() {
        let dirs = [PathBuf::from("/sys/fs/cgroup/cpuset/x")];
        let msg = "io error: failed to write 0-99 to /sys/fs/cgroup/cpuset/x/cpuset.cpus: ERANGE";
        assert_eq!(field_in_message(msg, &dirs), Some("linux.resources.cpu"));
        assert_eq!(
            field_in_message("unrelated /sys/fs/cgroup/y/memory.max", &dirs),
            None
        );
    }
}
