//! Memory whose residency the shim controls: fixed buffers made resident up front, and
//! short-lived buffers that leave the process entirely when dropped.
//!
//! The shim's RSS must not creep up while a container runs (docs/shim.md "Memory design"):
//! a buffer whose pages are touched one by one as bigger reads arrive makes RSS grow for
//! minutes or hours, and a heap allocation that is freed may or may not go back to the kernel
//! depending on what else the allocator holds.

use std::io;
use std::ptr::NonNull;

const PAGE: usize = 4096;

/// Write into every page of `buf` (its contents are not kept) so that all of it is resident
/// from now on.
pub fn prefault(buf: &mut [u8]) {
    for i in (0..buf.len()).step_by(PAGE) {
        buf[i] = 0;
    }
    // The writes above must reach memory although nothing reads them.
    std::hint::black_box(buf);
}

/// An anonymous private mapping of a fixed size, unmapped on drop: its pages count in RSS only
/// while it exists, whatever the heap looks like.
pub struct Region {
    ptr: NonNull<u8>,
    len: usize,
}

impl Region {
    pub fn new(len: usize) -> io::Result<Region> {
        // SAFETY: a fresh anonymous mapping; no existing memory is affected.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let ptr = NonNull::new(p as *mut u8).ok_or_else(|| io::Error::other("mmap: null"))?;
        Ok(Region { ptr, len })
    }

    pub fn as_slice(&self) -> &[u8] {
        // SAFETY: ptr..ptr+len is our mapping, readable (zero-filled when fresh), and lives as
        // long as self; the borrow of self keeps it from being unmapped meanwhile.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }

    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        // SAFETY: as in as_slice; the mutable borrow of self makes this the only reference.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }
}

impl Drop for Region {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the mapping created in new(); no slice of it outlives self.
        unsafe { libc::munmap(self.ptr.as_ptr() as *mut libc::c_void, self.len) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn region_is_zeroed_and_writable() {
        let mut r = Region::new(64 * 1024).unwrap();
        assert!(r.as_slice().iter().all(|&b| b == 0));
        r.as_mut_slice()[65535] = 7;
        assert_eq!(r.as_slice()[65535], 7);
    }

    fn rss_anon_kb() -> u64 {
        let s = std::fs::read_to_string("/proc/self/status").unwrap();
        s.lines()
            .find_map(|l| l.strip_prefix("RssAnon:"))
            .and_then(|v| v.trim().trim_end_matches(" kB").parse().ok())
            .unwrap()
    }

    #[test]
    fn prefault_makes_a_region_resident_and_drop_releases_it() {
        const MIB: usize = 1 << 20;
        let mut r = Region::new(16 * MIB).unwrap();
        let before = rss_anon_kb();
        prefault(r.as_mut_slice());
        let touched = rss_anon_kb();
        drop(r);
        let after = rss_anon_kb();
        // Other tests run in parallel threads of this process: allow them 4 MiB either way.
        assert!(touched >= before + 12 * 1024, "{before} kB -> {touched} kB");
        assert!(after + 12 * 1024 <= touched, "{touched} kB -> {after} kB");
    }
}
