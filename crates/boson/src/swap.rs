//! Whether the kernel may swap this process's memory out, which decides how a finished
//! instance's memory is reset.
//!
//! Wasmtime's cheap reset (`PAGEMAP_SCAN`) asks the kernel which pages an instance wrote and
//! resets only those. Up to 48.0.10 (48.0.11 fixes it, but cannot be built from crates.io
//! yet) it counts a page as written only while the page is in memory: one the kernel swapped
//! out before the instance ended is neither reset nor decommitted, and the next instance in
//! that slot reads what the last one wrote there. So the runtime uses the scan only where
//! nothing of the process can be swapped out, and resets the whole kept-resident part of a
//! memory otherwise.

use std::path::{Path, PathBuf};

/// The swap areas the kernel may move this process's pages to, named for a log line, or
/// `None` when there are none: no swap area is on (`/proc/swaps`), or this process's cgroup
/// (or one above it) allows it no swap (`memory.swap.max` is 0, cgroup v2).
pub fn in_use() -> Option<String> {
    let swaps = std::fs::read_to_string("/proc/swaps").ok()?;
    let areas = active_areas(&swaps);
    if areas.is_empty() {
        return None;
    }
    let cgroup = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    if cgroup_allows_no_swap(Path::new("/sys/fs/cgroup"), &cgroup) {
        return None;
    }
    Some(areas.join(", "))
}

/// The swap areas `/proc/swaps` lists (its first line is the header).
fn active_areas(swaps: &str) -> Vec<&str> {
    swaps
        .lines()
        .skip(1)
        .filter_map(|line| line.split_whitespace().next())
        .collect()
}

/// Whether the unified (v2) cgroup this process is in, or any cgroup above it up to the
/// hierarchy's root at `root`, sets `memory.swap.max` to 0. `cgroup` is `/proc/self/cgroup`.
fn cgroup_allows_no_swap(root: &Path, cgroup: &str) -> bool {
    let Some(path) = cgroup.lines().find_map(|line| line.strip_prefix("0::")) else {
        return false;
    };
    let mut dir: PathBuf = root.join(path.trim_start_matches('/'));
    loop {
        let max = std::fs::read_to_string(dir.join("memory.swap.max")).unwrap_or_default();
        if max.trim() == "0" {
            return true;
        }
        if dir.as_path() == root || !dir.pop() || !dir.starts_with(root) {
            return false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_the_areas_under_the_header() {
        let swaps = "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n\
                     /swapfile                               file\t\t65532\t\t0\t\t-2\n\
                     /dev/zram0                              partition\t8388604\t\t0\t\t100\n";
        assert_eq!(active_areas(swaps), ["/swapfile", "/dev/zram0"]);
        assert!(active_areas("Filename\tType\tSize\tUsed\tPriority\n").is_empty());
        assert!(active_areas("").is_empty());
    }

    #[test]
    fn a_zero_swap_limit_here_or_above_allows_no_swap() {
        let root = tempfile::tempdir().unwrap();
        let leaf = root.path().join("system.slice/boson.service");
        std::fs::create_dir_all(&leaf).unwrap();
        let cgroup = "0::/system.slice/boson.service\n";
        // No limit anywhere, or one that allows some swap.
        assert!(!cgroup_allows_no_swap(root.path(), cgroup));
        std::fs::write(leaf.join("memory.swap.max"), "max\n").unwrap();
        assert!(!cgroup_allows_no_swap(root.path(), cgroup));
        // A zero limit on a cgroup above.
        std::fs::write(root.path().join("system.slice/memory.swap.max"), "0\n").unwrap();
        assert!(cgroup_allows_no_swap(root.path(), cgroup));
        // A cgroup namespace's root (a container): the hierarchy's root itself.
        std::fs::write(root.path().join("memory.swap.max"), "0\n").unwrap();
        assert!(cgroup_allows_no_swap(root.path(), "0::/\n"));
        // Only cgroup v1 lines: unknown, so swap counts as possible.
        assert!(!cgroup_allows_no_swap(root.path(), "4:memory:/a\n"));
    }
}
