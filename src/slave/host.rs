//! What the slave tells the master about itself: the interpreter's tags
//! for HELLO and the machine's resources for IDLE and BUSY.
//!
//! piwheels 0.23 takes the tags from its own interpreter: the version from
//! `packaging.tags.interpreter_version()`, the ABI and platform from
//! `wheel.bdist_wheel`'s `get_abi_tag()`/`get_platform()`. We ask the
//! configured interpreter (the one that will build) the same questions with
//! a standard-library-only script, so neither `packaging` nor `wheel` needs
//! to be installed:
//! - version: `sysconfig`'s `py_version_nodot`, else major and minor
//!   joined (`"311"`);
//! - ABI: from `SOABI` — `cpython-311-arm-linux-gnueabihf` → `cp311`,
//!   `cpython-37m-…` → `cp37m`, PyPy's first two parts, anything else with
//!   `-`/`.` turned into `_`; without `SOABI`, implementation + version
//!   (+ `d` for debug builds);
//! - platform: `sysconfig.get_platform()` with `-` and `.` turned into
//!   `_`, except that a 32-bit interpreter on a 64-bit kernel reports
//!   `linux_armv7l` (not `linux_aarch64`) and `linux_i686` (not
//!   `linux_x86_64`), as wheel does.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::protocol::{SlaveHello, SlaveStats, TimeDelta};

/// The interpreter's wheel tags and whether it has pip.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PythonTags {
    /// e.g. `311`.
    pub py_version: String,
    /// e.g. `cp311`.
    pub abi: String,
    /// e.g. `linux_armv7l`.
    pub platform: String,
    /// Can it run `-m pip`?
    pub has_pip: bool,
}

/// The script run with `<python> -c`: prints version, ABI, platform and
/// whether pip is importable, one a line.
pub const TAGS_SCRIPT: &str = r#"
import importlib.util, struct, sys, sysconfig
impl = {'cpython': 'cp', 'pypy': 'pp', 'ironpython': 'ip', 'jython': 'jy'}.get(
    sys.implementation.name, sys.implementation.name)
ver = sysconfig.get_config_var('py_version_nodot') or '%d%d' % sys.version_info[:2]
soabi = sysconfig.get_config_var('SOABI')
if soabi and impl == 'cp' and soabi.startswith('cpython'):
    abi = 'cp' + soabi.split('-')[1]
elif soabi and impl == 'cp' and soabi.startswith('cp'):
    abi = soabi.split('-')[0]
elif soabi and impl == 'pp':
    abi = '-'.join(soabi.split('-')[:2]).replace('.', '_').replace('-', '_')
elif soabi:
    abi = soabi.replace('.', '_').replace('-', '_')
else:
    abi = impl + str(ver) + ('d' if hasattr(sys, 'gettotalrefcount') else '')
plat = sysconfig.get_platform()
if struct.calcsize('P') == 4:
    plat = {'linux-x86_64': 'linux-i686', 'linux-aarch64': 'linux-armv7l'}.get(plat, plat)
plat = plat.replace('-', '_').replace('.', '_')
print(ver)
print(abi)
print(plat)
print('pip' if importlib.util.find_spec('pip') else 'nopip')
"#;

/// Reads the script's output.
pub fn parse_tags(stdout: &str) -> Result<PythonTags, String> {
    let lines: Vec<&str> = stdout.lines().map(str::trim).collect();
    match lines.as_slice() {
        [ver, abi, plat, pip]
            if [ver, abi, plat].iter().all(|s| {
                !s.is_empty()
                    && s.chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
            }) =>
        {
            Ok(PythonTags {
                py_version: ver.to_string(),
                abi: abi.to_string(),
                platform: plat.to_string(),
                has_pip: *pip == "pip",
            })
        }
        _ => Err(format!("unexpected answer: {stdout:?}")),
    }
}

/// Asks `python` for its tags.
pub fn python_tags(python: &str) -> Result<PythonTags, String> {
    let out = Command::new(python)
        .arg("-c")
        .arg(TAGS_SCRIPT)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {python}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{python} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    parse_tags(&String::from_utf8_lossy(&out.stdout)).map_err(|e| format!("{python}: {e}"))
}

/// The HELLO record.
pub fn hello(
    tags: &PythonTags,
    build_timeout: Duration,
    master_timeout: Duration,
    label: &str,
) -> SlaveHello {
    let (os_name, os_version) = crate::info::os_name_version();
    SlaveHello {
        build_timeout: TimeDelta::from_std(build_timeout).unwrap_or(TimeDelta::ZERO),
        busy_timeout: TimeDelta::from_std(master_timeout).unwrap_or(TimeDelta::ZERO),
        py_version: tags.py_version.clone(),
        native_abi: tags.abi.clone(),
        native_platform: tags.platform.clone(),
        label: label.to_string(),
        os_name,
        os_version,
        board_revision: crate::info::board_revision(),
        board_serial: crate::info::board_serial(),
    }
}

/// Now, at the microsecond precision the wire carries.
fn now_utc() -> chrono::DateTime<chrono::Utc> {
    let now = chrono::Utc::now();
    chrono::DateTime::from_timestamp_micros(now.timestamp_micros()).unwrap_or(now)
}

/// The 9-field statistics of IDLE and BUSY: now, the build directory's
/// disk, memory, swap, load and CPU temperature (0.0 if unknown).
pub fn stats(build_dir: &Path) -> SlaveStats {
    let (disk_size, disk_free) = crate::info::disk_usage(build_dir).unwrap_or((0, 0));
    let mem = crate::info::meminfo();
    SlaveStats {
        timestamp: now_utc(),
        disk_size,
        disk_free,
        mem_size: mem.mem_size,
        mem_free: mem.mem_free,
        swap_size: mem.swap_size,
        swap_free: mem.swap_free,
        load_average: crate::info::load_average(),
        cpu_temp: crate::info::cpu_temp(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_output() {
        assert_eq!(
            parse_tags("311\ncp311\nlinux_armv7l\npip\n"),
            Ok(PythonTags {
                py_version: "311".into(),
                abi: "cp311".into(),
                platform: "linux_armv7l".into(),
                has_pip: true,
            })
        );
        assert!(
            !parse_tags("37\ncp37m\nlinux_armv6l\nnopip\n")
                .unwrap()
                .has_pip
        );
        for bad in [
            "",
            "311\ncp311\n",
            "311\n\nx\npip\n",
            "3 11\ncp\nx\npip\n",
            "a\nb\nc\nd\ne\n",
        ] {
            assert!(parse_tags(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn this_machines_python() {
        // The test machine's interpreter, asked the way the slave asks it.
        let Ok(tags) = python_tags("python3") else {
            eprintln!("no python3; skipped");
            return;
        };
        let vi = Command::new("python3")
            .args(["-c", "import sys; print('%d%d' % sys.version_info[:2])"])
            .output()
            .unwrap();
        assert_eq!(tags.py_version, String::from_utf8_lossy(&vi.stdout).trim());
        assert_eq!(tags.abi, format!("cp{}", tags.py_version));
        assert!(tags.platform.starts_with("linux_"), "{tags:?}");
        assert!(!tags.platform.contains('-'));
        assert!(python_tags("/nonexistent/python").is_err());
        assert!(python_tags("false").is_err());
    }

    #[test]
    fn hello_and_stats() {
        let tags = PythonTags {
            py_version: "311".into(),
            abi: "cp311".into(),
            platform: "linux_x86_64".into(),
            has_pip: true,
        };
        let h = hello(
            &tags,
            Duration::from_secs(3 * 3600),
            Duration::from_secs(300),
            "label",
        );
        assert_eq!(h.build_timeout, TimeDelta::from_secs(10800).unwrap());
        assert_eq!(h.busy_timeout, TimeDelta::from_secs(300).unwrap());
        assert_eq!(
            (
                h.py_version.as_str(),
                h.native_abi.as_str(),
                h.native_platform.as_str()
            ),
            ("311", "cp311", "linux_x86_64")
        );
        assert_eq!(h.label, "label");
        let s = stats(Path::new("/"));
        assert!(s.disk_size >= s.disk_free && s.disk_size > 0);
        assert!(s.mem_size > 0);
        assert!(s.load_average >= 0.0);
        assert!((chrono::Utc::now() - s.timestamp).num_seconds().abs() < 60);
    }
}
