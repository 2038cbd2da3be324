//! Facts about the machine we run on, read the way piwheels reads them: the
//! master's HELLO to monitors and its stats, and the slave's HELLO and stats,
//! all carry these.
//!
//! Every reader is forgiving: a file that is missing (no device tree on a PC,
//! no thermal zone in a container) gives piwheels' fallback value rather
//! than an error, because none of this is worth failing over.

use std::path::Path;

/// The host name, as `socket.gethostname()` gives it.
pub fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname NUL-terminates
    // unless the name is truncated, which the position search handles.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return "unknown".to_string();
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

/// `NAME` and `VERSION` from `/etc/os-release` (defaults "Linux" and "").
pub fn os_name_version() -> (String, String) {
    os_name_version_from(Path::new("/etc/os-release"))
}

fn os_name_version_from(path: &Path) -> (String, String) {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let mut name = "Linux".to_string();
    let mut version = String::new();
    for line in text.lines() {
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let value = value.trim();
        let value = value
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .or_else(|| value.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')))
            .unwrap_or(value);
        match key.trim() {
            "NAME" => name = value.to_string(),
            "VERSION" => version = value.to_string(),
            _ => {}
        }
    }
    (name, version)
}

/// The Raspberry Pi board revision: the big-endian u32 in the device tree,
/// as lower-case hex without leading zeros, or "unknown".
pub fn board_revision() -> String {
    device_tree_hex(Path::new("/proc/device-tree/system/linux,revision"), 4)
}

/// The board serial: the big-endian u64 in the device tree, or "unknown".
pub fn board_serial() -> String {
    device_tree_hex(Path::new("/proc/device-tree/system/linux,serial"), 8)
}

fn device_tree_hex(path: &Path, width: usize) -> String {
    match std::fs::read(path) {
        Ok(bytes) if bytes.len() >= width => {
            let n = bytes[..width]
                .iter()
                .fold(0u64, |acc, &b| (acc << 8) | u64::from(b));
            format!("{n:x}")
        }
        _ => "unknown".to_string(),
    }
}

/// Memory and swap in bytes, from `/proc/meminfo`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MemInfo {
    pub mem_size: u64,
    /// MemAvailable, or MemFree + Cached on kernels without it.
    pub mem_free: u64,
    pub swap_size: u64,
    pub swap_free: u64,
}

pub fn meminfo() -> MemInfo {
    parse_meminfo(&std::fs::read_to_string("/proc/meminfo").unwrap_or_default())
}

fn parse_meminfo(text: &str) -> MemInfo {
    let get = |key: &str| -> Option<u64> {
        text.lines().find_map(|line| {
            let rest = line.strip_prefix(key)?.strip_prefix(':')?;
            let kb: u64 = rest.split_whitespace().next()?.parse().ok()?;
            Some(kb * 1024)
        })
    };
    let available = get("MemAvailable");
    let free = get("MemFree").unwrap_or(0);
    let cached = get("Cached").unwrap_or(0);
    MemInfo {
        mem_size: get("MemTotal").unwrap_or(0),
        mem_free: available.unwrap_or(free + cached),
        swap_size: get("SwapTotal").unwrap_or(0),
        swap_free: get("SwapFree").unwrap_or(0),
    }
}

/// The 1-minute load average.
pub fn load_average() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|t| t.split_whitespace().next()?.parse().ok())
        .unwrap_or(0.0)
}

/// The CPU temperature in °C from thermal zone 0, or 0.0 where there is
/// none (as piwheels 0.23 does).
pub fn cpu_temp() -> f64 {
    std::fs::read_to_string("/sys/class/thermal/thermal_zone0/temp")
        .ok()
        .and_then(|t| t.trim().parse::<f64>().ok())
        .map(|milli| milli / 1000.0)
        .unwrap_or(0.0)
}

fn statvfs(path: &Path) -> std::io::Result<libc::statvfs> {
    use std::os::unix::ffi::OsStrExt;
    let c_path = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidInput, "NUL in path"))?;
    // SAFETY: statvfs writes into the zeroed struct we own; the path is a
    // valid NUL-terminated string.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::statvfs(c_path.as_ptr(), &mut st) };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(st)
}

/// Size and free space (available to unprivileged users) of the file system
/// holding `path`, in bytes: `f_blocks * f_frsize` and `f_bavail * f_frsize`.
pub fn disk_usage(path: &Path) -> std::io::Result<(u64, u64)> {
    let st = statvfs(path)?;
    let frsize = st.f_frsize as u64;
    Ok((st.f_blocks as u64 * frsize, st.f_bavail as u64 * frsize))
}

/// Inodes of the file system holding `path`, and how many are free to
/// unprivileged users (`f_files`, `f_favail`); None where the file system
/// has no fixed number of them (btrfs, for one, reports 0).
pub fn inode_usage(path: &Path) -> std::io::Result<Option<(u64, u64)>> {
    let st = statvfs(path)?;
    Ok((st.f_files > 0).then_some((st.f_files as u64, st.f_favail as u64)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meminfo_prefers_mem_available() {
        let text = "MemTotal:  1000 kB\nMemFree: 100 kB\nMemAvailable: 600 kB\nCached: 200 kB\n\
                    SwapTotal: 50 kB\nSwapFree: 40 kB\n";
        assert_eq!(
            parse_meminfo(text),
            MemInfo {
                mem_size: 1000 * 1024,
                mem_free: 600 * 1024,
                swap_size: 50 * 1024,
                swap_free: 40 * 1024
            }
        );
        let old = "MemTotal: 1000 kB\nMemFree: 100 kB\nCached: 200 kB\n";
        assert_eq!(parse_meminfo(old).mem_free, 300 * 1024);
        assert_eq!(parse_meminfo("").mem_size, 0);
    }

    #[test]
    fn os_release_quotes_and_defaults() {
        let dir = std::env::temp_dir().join(format!("piw-info-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("os-release");
        std::fs::write(
            &p,
            "PRETTY_NAME=\"x\"\nNAME=\"Raspbian GNU/Linux\"\nVERSION='12 (bookworm)'\n",
        )
        .unwrap();
        assert_eq!(
            os_name_version_from(&p),
            (
                "Raspbian GNU/Linux".to_string(),
                "12 (bookworm)".to_string()
            )
        );
        assert_eq!(
            os_name_version_from(&dir.join("missing")),
            ("Linux".to_string(), String::new())
        );
    }

    #[test]
    fn device_tree_values_are_hex_without_leading_zeros() {
        let dir = std::env::temp_dir().join(format!("piw-info-dt-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let rev = dir.join("rev");
        std::fs::write(&rev, [0x00, 0xc0, 0x31, 0x14]).unwrap();
        assert_eq!(device_tree_hex(&rev, 4), "c03114");
        let serial = dir.join("serial");
        std::fs::write(&serial, [0x10, 0, 0, 0, 0xa3, 0xf6, 0xb2, 0xc1]).unwrap();
        assert_eq!(device_tree_hex(&serial, 8), "10000000a3f6b2c1");
        assert_eq!(device_tree_hex(&dir.join("none"), 4), "unknown");
    }

    #[test]
    fn live_readers_do_not_fail() {
        assert!(!hostname().is_empty());
        let (size, free) = disk_usage(Path::new("/")).unwrap();
        assert!(size >= free && size > 0);
        assert!(meminfo().mem_size > 0);
        assert!(load_average() >= 0.0);
        let _ = cpu_temp();
        assert!(disk_usage(Path::new("/nonexistent/path")).is_err());
    }
}
