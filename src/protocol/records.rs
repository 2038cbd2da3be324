//! The compound records of piwheels 0.23 (`_slave_hello`, `_slave_stats`,
//! `_file_state`, … in `protocols.py`), as schemas and as Rust structs.
//!
//! Field order is the wire order; every record is an exact-length array
//! (no optional or extra fields). The Rust types add range checks to the
//! schema: sizes, counts and ids are `u64` (a negative or oversized value is
//! invalid data), and datetimes are UTC at microsecond precision (a
//! timestamp received with another offset is converted; sub-microsecond
//! digits are dropped when encoding).
//!
//! Wherever piwheels expects an `int`, a bool is accepted too, because
//! voluptuous' `isinstance(v, int)` check lets `True`/`False` through. Once
//! typed it is just 1 or 0, so it is re-encoded as an int, not a bool.
//!
//! Maps whose key order matters on the wire (dependencies are written apt,
//! pip, "") are ordered `Vec`s of pairs, never hash maps.

use chrono::{DateTime, Utc};

use super::convert::{
    Conv, FieldError, boolean, datetime, float, list, map_value, opt_text, seq, text, text_list,
    text_list_value, text_map, timedelta, uint,
};
use super::schema::Schema as S;
use super::value::{TimeDelta, Value};

const OPT_STR: S = S::Any(&[S::Str, S::Null]);

/// `_master_hello`: what the master tells a new monitor about itself.
pub const MASTER_HELLO: S = S::Seq(&[S::DateTime, S::Str, S::Str, S::Str, S::Str, S::Str]);

/// `_master_stats` (19 fields in 0.23; sizes come before frees).
pub const MASTER_STATS: S = S::Seq(&[
    S::DateTime,
    S::Int,
    S::Dict(&S::Int),
    S::TimeDelta,
    S::Int,
    S::Dict(&S::Int),
    S::Int,
    S::Int,
    S::Int,
    S::Int,
    S::Int,
    S::Int,
    S::Int,
    S::Int,
    S::Int,
    S::Int,
    S::Int,
    S::Float,
    S::Float,
]);

/// `_slave_hello` (10 fields).
pub const SLAVE_HELLO: S = S::Seq(&[
    S::TimeDelta,
    S::TimeDelta,
    S::Str,
    S::Str,
    S::Str,
    S::Str,
    S::Str,
    S::Str,
    S::Str,
    S::Str,
]);

/// `_slave_stats` (9 fields in 0.23, with swap).
pub const SLAVE_STATS: S = S::Seq(&[
    S::DateTime,
    S::Int,
    S::Int,
    S::Int,
    S::Int,
    S::Int,
    S::Int,
    S::Float,
    S::Float,
]);

/// `_file_state` (11 fields in 0.23: `requires_python` after the platform
/// tag, `location` after the dependencies).
pub const FILE_STATE: S = S::Seq(&[
    S::Str,
    S::Int,
    S::Str,
    S::Str,
    S::Str,
    S::Str,
    S::Str,
    S::Str,
    OPT_STR,
    S::Dict(&S::List(&S::Str)),
    S::Str,
]);

/// `_build_state` (8 fields; the build id is never sent).
pub const BUILD_STATE: S = S::Seq(&[
    S::Int,
    S::Str,
    S::Str,
    S::Str,
    S::Bool,
    S::TimeDelta,
    S::Str,
    S::List(&FILE_STATE),
]);

/// `_download_state` (13 fields).
pub const DOWNLOAD_STATE: S = S::Seq(&[
    S::Str,
    S::Str,
    S::DateTime,
    OPT_STR,
    OPT_STR,
    OPT_STR,
    OPT_STR,
    OPT_STR,
    OPT_STR,
    OPT_STR,
    OPT_STR,
    OPT_STR,
    OPT_STR,
]);

/// `_search_state` (same shape as `_download_state`).
pub const SEARCH_STATE: S = DOWNLOAD_STATE;

/// `_project_state`, `_json_state`, `_page_state` (4 fields).
pub const PAGE_STATE: S = S::Seq(&[S::Str, S::Str, S::DateTime, S::Str]);
/// See [`PAGE_STATE`].
pub const PROJECT_STATE: S = PAGE_STATE;
/// See [`PAGE_STATE`].
pub const JSON_STATE: S = PAGE_STATE;

/// A record that travels as one CBOR value.
pub trait Record: Sized {
    /// piwheels' schema for it.
    const SCHEMA: S;
    /// The wire form.
    fn to_value(&self) -> Value;
    /// Reads the wire form, checking shapes and Rust ranges; never panics.
    fn from_value(v: &Value) -> Result<Self, FieldError>;
}

/// A file's dependencies: tool (`"apt"`, `"pip"`, or `""` for libraries no
/// package owns) → names, in wire order.
pub type Dependencies = Vec<(String, Vec<String>)>;

/// Counts per ABI tag, in wire order.
pub type AbiCounts = Vec<(String, u64)>;

/// `HELLO` from a build slave.
#[derive(Debug, Clone, PartialEq)]
pub struct SlaveHello {
    /// How long a build may take before the master gives up on it.
    pub build_timeout: TimeDelta,
    /// How long the slave may stay silent while busy.
    pub busy_timeout: TimeDelta,
    /// e.g. `"311"`.
    pub py_version: String,
    /// e.g. `"cp311"`.
    pub native_abi: String,
    /// e.g. `"linux_armv7l"`.
    pub native_platform: String,
    /// The slave's label (its host name by default).
    pub label: String,
    /// OS name.
    pub os_name: String,
    /// OS version.
    pub os_version: String,
    /// Raspberry Pi board revision, or `"unknown"`.
    pub board_revision: String,
    /// Board serial number, or `"unknown"`.
    pub board_serial: String,
}

impl Record for SlaveHello {
    const SCHEMA: S = SLAVE_HELLO;

    fn to_value(&self) -> Value {
        Value::Array(vec![
            self.build_timeout.into(),
            self.busy_timeout.into(),
            (&self.py_version).into(),
            (&self.native_abi).into(),
            (&self.native_platform).into(),
            (&self.label).into(),
            (&self.os_name).into(),
            (&self.os_version).into(),
            (&self.board_revision).into(),
            (&self.board_serial).into(),
        ])
    }

    fn from_value(v: &Value) -> Conv<Self> {
        let a = seq(v, 10, "SlaveHello")?;
        Ok(SlaveHello {
            build_timeout: timedelta(&a[0], "build_timeout")?,
            busy_timeout: timedelta(&a[1], "busy_timeout")?,
            py_version: text(&a[2], "py_version")?,
            native_abi: text(&a[3], "native_abi")?,
            native_platform: text(&a[4], "native_platform")?,
            label: text(&a[5], "label")?,
            os_name: text(&a[6], "os_name")?,
            os_version: text(&a[7], "os_version")?,
            board_revision: text(&a[8], "board_revision")?,
            board_serial: text(&a[9], "board_serial")?,
        })
    }
}

/// `IDLE`/`BUSY` from a build slave: its resources.
#[derive(Debug, Clone, PartialEq)]
pub struct SlaveStats {
    /// The slave's clock when it sent this.
    pub timestamp: DateTime<Utc>,
    /// Build directory size, bytes.
    pub disk_size: u64,
    /// Build directory free space, bytes.
    pub disk_free: u64,
    /// Memory size, bytes.
    pub mem_size: u64,
    /// Free memory, bytes.
    pub mem_free: u64,
    /// Swap size, bytes.
    pub swap_size: u64,
    /// Free swap, bytes.
    pub swap_free: u64,
    /// 1-minute load average (always a float on the wire).
    pub load_average: f64,
    /// Board temperature, °C (always a float on the wire; 0.0 if unknown).
    pub cpu_temp: f64,
}

impl Record for SlaveStats {
    const SCHEMA: S = SLAVE_STATS;

    fn to_value(&self) -> Value {
        Value::Array(vec![
            self.timestamp.into(),
            self.disk_size.into(),
            self.disk_free.into(),
            self.mem_size.into(),
            self.mem_free.into(),
            self.swap_size.into(),
            self.swap_free.into(),
            self.load_average.into(),
            self.cpu_temp.into(),
        ])
    }

    fn from_value(v: &Value) -> Conv<Self> {
        let a = seq(v, 9, "SlaveStats")?;
        Ok(SlaveStats {
            timestamp: datetime(&a[0], "timestamp")?,
            disk_size: uint(&a[1], "disk_size")?,
            disk_free: uint(&a[2], "disk_free")?,
            mem_size: uint(&a[3], "mem_size")?,
            mem_free: uint(&a[4], "mem_free")?,
            swap_size: uint(&a[5], "swap_size")?,
            swap_free: uint(&a[6], "swap_free")?,
            load_average: float(&a[7], "load_average")?,
            cpu_temp: float(&a[8], "cpu_temp")?,
        })
    }
}

/// One wheel of a build (the internal "transferred" flag is never sent).
#[derive(Debug, Clone, PartialEq)]
pub struct FileState {
    /// The wheel's file name.
    pub filename: String,
    /// Size in bytes.
    pub filesize: u64,
    /// Lower-case hex SHA-256.
    pub filehash: String,
    /// Package name from the wheel name.
    pub package_tag: String,
    /// Version from the wheel name.
    pub package_version_tag: String,
    /// Python tag, e.g. `"cp311"`.
    pub py_version_tag: String,
    /// ABI tag, e.g. `"cp311"`, `"abi3"`, `"none"`.
    pub abi_tag: String,
    /// Platform tag, e.g. `"linux_armv7l"`.
    pub platform_tag: String,
    /// The wheel's `Requires-Python`, if any.
    pub requires_python: Option<String>,
    /// Dependencies by tool, in wire order (0.23 slaves send apt, pip, "").
    pub dependencies: Dependencies,
    /// Always `"/simple"` in 0.23.
    pub location: String,
}

fn dependencies(v: &Value) -> Conv<Dependencies> {
    text_map(v, "dependencies", |x| text_list(x, "dependencies"))
}

impl Record for FileState {
    const SCHEMA: S = FILE_STATE;

    fn to_value(&self) -> Value {
        Value::Array(vec![
            (&self.filename).into(),
            self.filesize.into(),
            (&self.filehash).into(),
            (&self.package_tag).into(),
            (&self.package_version_tag).into(),
            (&self.py_version_tag).into(),
            (&self.abi_tag).into(),
            (&self.platform_tag).into(),
            self.requires_python.as_deref().into(),
            map_value(&self.dependencies, |l| text_list_value(l)),
            (&self.location).into(),
        ])
    }

    fn from_value(v: &Value) -> Conv<Self> {
        let a = seq(v, 11, "FileState")?;
        Ok(FileState {
            filename: text(&a[0], "filename")?,
            filesize: uint(&a[1], "filesize")?,
            filehash: text(&a[2], "filehash")?,
            package_tag: text(&a[3], "package_tag")?,
            package_version_tag: text(&a[4], "package_version_tag")?,
            py_version_tag: text(&a[5], "py_version_tag")?,
            abi_tag: text(&a[6], "abi_tag")?,
            platform_tag: text(&a[7], "platform_tag")?,
            requires_python: opt_text(&a[8], "requires_python")?,
            dependencies: dependencies(&a[9])?,
            location: text(&a[10], "location")?,
        })
    }
}

pub(crate) fn files(v: &Value) -> Conv<Vec<FileState>> {
    list(v, "files", FileState::from_value)
}

pub(crate) fn files_value(files: &[FileState]) -> Value {
    Value::Array(files.iter().map(Record::to_value).collect())
}

/// A build as logged and imported (the build id is never sent). piwheels
/// lists `files` sorted by filename; whoever builds one should too.
#[derive(Debug, Clone, PartialEq)]
pub struct BuildState {
    /// The slave that built it (0 for piw-import).
    pub slave_id: u64,
    /// Package name.
    pub package: String,
    /// Version.
    pub version: String,
    /// The ABI built for.
    pub abi_tag: String,
    /// Success?
    pub status: bool,
    /// How long the build took.
    pub duration: TimeDelta,
    /// The build log.
    pub output: String,
    /// The wheels produced.
    pub files: Vec<FileState>,
}

impl Record for BuildState {
    const SCHEMA: S = BUILD_STATE;

    fn to_value(&self) -> Value {
        Value::Array(vec![
            self.slave_id.into(),
            (&self.package).into(),
            (&self.version).into(),
            (&self.abi_tag).into(),
            self.status.into(),
            self.duration.into(),
            (&self.output).into(),
            files_value(&self.files),
        ])
    }

    fn from_value(v: &Value) -> Conv<Self> {
        let a = seq(v, 8, "BuildState")?;
        Ok(BuildState {
            slave_id: uint(&a[0], "slave_id")?,
            package: text(&a[1], "package")?,
            version: text(&a[2], "version")?,
            abi_tag: text(&a[3], "abi_tag")?,
            status: boolean(&a[4], "status")?,
            duration: timedelta(&a[5], "duration")?,
            output: text(&a[6], "output")?,
            files: files(&a[7])?,
        })
    }
}

/// `HELLO` from the master to a monitor.
#[derive(Debug, Clone, PartialEq)]
pub struct MasterHello {
    /// When the master started.
    pub timestamp: DateTime<Utc>,
    /// Its label (host name by default).
    pub label: String,
    /// OS name.
    pub os_name: String,
    /// OS version.
    pub os_version: String,
    /// Board revision, or `"unknown"`.
    pub board_revision: String,
    /// Board serial, or `"unknown"`.
    pub board_serial: String,
}

impl Record for MasterHello {
    const SCHEMA: S = MASTER_HELLO;

    fn to_value(&self) -> Value {
        Value::Array(vec![
            self.timestamp.into(),
            (&self.label).into(),
            (&self.os_name).into(),
            (&self.os_version).into(),
            (&self.board_revision).into(),
            (&self.board_serial).into(),
        ])
    }

    fn from_value(v: &Value) -> Conv<Self> {
        let a = seq(v, 6, "MasterHello")?;
        Ok(MasterHello {
            timestamp: datetime(&a[0], "timestamp")?,
            label: text(&a[1], "label")?,
            os_name: text(&a[2], "os_name")?,
            os_version: text(&a[3], "os_version")?,
            board_revision: text(&a[4], "board_revision")?,
            board_serial: text(&a[5], "board_serial")?,
        })
    }
}

/// `STATS` from the master (and `HOME` to the scribe): 19 fields.
#[derive(Debug, Clone, PartialEq)]
pub struct MasterStats {
    /// When the statistics were taken.
    pub timestamp: DateTime<Utc>,
    /// Packages with at least one successful build.
    pub packages_built: u64,
    /// Builds in the last hour, per ABI.
    pub builds_last_hour: AbiCounts,
    /// Total build time.
    pub builds_time: TimeDelta,
    /// Total size of built files, bytes.
    pub builds_size: u64,
    /// Pending builds, per ABI.
    pub builds_pending: AbiCounts,
    /// New packages/versions in the last hour.
    pub new_last_hour: u64,
    /// Number of files.
    pub files_count: u64,
    /// Downloads in the last hour.
    pub downloads_last_hour: u64,
    /// Downloads in the last month.
    pub downloads_last_month: u64,
    /// Downloads ever.
    pub downloads_all: u64,
    /// Output directory size, bytes.
    pub disk_size: u64,
    /// Output directory free space, bytes.
    pub disk_free: u64,
    /// Memory size, bytes.
    pub mem_size: u64,
    /// Free memory, bytes.
    pub mem_free: u64,
    /// Swap size, bytes.
    pub swap_size: u64,
    /// Free swap, bytes.
    pub swap_free: u64,
    /// 1-minute load average.
    pub load_average: f64,
    /// Board temperature, °C.
    pub cpu_temp: f64,
}

fn abi_counts(v: &Value, field: &'static str) -> Conv<AbiCounts> {
    text_map(v, field, |x| uint(x, field))
}

impl Record for MasterStats {
    const SCHEMA: S = MASTER_STATS;

    fn to_value(&self) -> Value {
        let counts = |c: &AbiCounts| map_value(c, |n| Value::from(*n));
        Value::Array(vec![
            self.timestamp.into(),
            self.packages_built.into(),
            counts(&self.builds_last_hour),
            self.builds_time.into(),
            self.builds_size.into(),
            counts(&self.builds_pending),
            self.new_last_hour.into(),
            self.files_count.into(),
            self.downloads_last_hour.into(),
            self.downloads_last_month.into(),
            self.downloads_all.into(),
            self.disk_size.into(),
            self.disk_free.into(),
            self.mem_size.into(),
            self.mem_free.into(),
            self.swap_size.into(),
            self.swap_free.into(),
            self.load_average.into(),
            self.cpu_temp.into(),
        ])
    }

    fn from_value(v: &Value) -> Conv<Self> {
        let a = seq(v, 19, "MasterStats")?;
        Ok(MasterStats {
            timestamp: datetime(&a[0], "timestamp")?,
            packages_built: uint(&a[1], "packages_built")?,
            builds_last_hour: abi_counts(&a[2], "builds_last_hour")?,
            builds_time: timedelta(&a[3], "builds_time")?,
            builds_size: uint(&a[4], "builds_size")?,
            builds_pending: abi_counts(&a[5], "builds_pending")?,
            new_last_hour: uint(&a[6], "new_last_hour")?,
            files_count: uint(&a[7], "files_count")?,
            downloads_last_hour: uint(&a[8], "downloads_last_hour")?,
            downloads_last_month: uint(&a[9], "downloads_last_month")?,
            downloads_all: uint(&a[10], "downloads_all")?,
            disk_size: uint(&a[11], "disk_size")?,
            disk_free: uint(&a[12], "disk_free")?,
            mem_size: uint(&a[13], "mem_size")?,
            mem_free: uint(&a[14], "mem_free")?,
            swap_size: uint(&a[15], "swap_size")?,
            swap_free: uint(&a[16], "swap_free")?,
            load_average: float(&a[17], "load_average")?,
            cpu_temp: float(&a[18], "cpu_temp")?,
        })
    }
}

/// What pip's user agent said about the client; every field may be null.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ClientInfo {
    /// CPU architecture, e.g. `"armv7l"`.
    pub arch: Option<String>,
    /// Distribution name.
    pub distro_name: Option<String>,
    /// Distribution version.
    pub distro_version: Option<String>,
    /// OS name.
    pub os_name: Option<String>,
    /// OS version.
    pub os_version: Option<String>,
    /// Python implementation, e.g. `"CPython"`.
    pub py_name: Option<String>,
    /// Python version.
    pub py_version: Option<String>,
    /// Installer name, e.g. `"pip"` or `"uv"`.
    pub installer_name: Option<String>,
    /// Installer version.
    pub installer_version: Option<String>,
    /// setuptools version.
    pub setuptools_version: Option<String>,
}

impl ClientInfo {
    fn push_values(&self, out: &mut Vec<Value>) {
        for f in [
            &self.arch,
            &self.distro_name,
            &self.distro_version,
            &self.os_name,
            &self.os_version,
            &self.py_name,
            &self.py_version,
            &self.installer_name,
            &self.installer_version,
            &self.setuptools_version,
        ] {
            out.push(f.as_deref().into());
        }
    }

    fn from_values(a: &[Value]) -> Conv<Self> {
        let [arch, dn, dv, on, ov, pn, pv, inn, iv, sv] = a else {
            return Err(FieldError::new("client", "wrong number of elements"));
        };
        Ok(ClientInfo {
            arch: opt_text(arch, "arch")?,
            distro_name: opt_text(dn, "distro_name")?,
            distro_version: opt_text(dv, "distro_version")?,
            os_name: opt_text(on, "os_name")?,
            os_version: opt_text(ov, "os_version")?,
            py_name: opt_text(pn, "py_name")?,
            py_version: opt_text(pv, "py_version")?,
            installer_name: opt_text(inn, "installer_name")?,
            installer_version: opt_text(iv, "installer_version")?,
            setuptools_version: opt_text(sv, "setuptools_version")?,
        })
    }
}

fn hit_value(first: &str, host: &str, ts: &DateTime<Utc>, client: &ClientInfo) -> Value {
    let mut out = vec![first.into(), host.into(), (*ts).into()];
    client.push_values(&mut out);
    Value::Array(out)
}

fn hit_from<'a>(
    v: &'a Value,
    what: &'static str,
) -> Conv<(String, String, DateTime<Utc>, &'a [Value])> {
    let a = seq(v, 13, what)?;
    Ok((
        text(&a[0], what)?,
        text(&a[1], "host")?,
        datetime(&a[2], "timestamp")?,
        &a[3..],
    ))
}

/// `LOGDOWNLOAD`: a wheel was downloaded.
#[derive(Debug, Clone, PartialEq)]
pub struct DownloadState {
    /// The wheel downloaded.
    pub filename: String,
    /// Client address.
    pub host: String,
    /// When (UTC).
    pub timestamp: DateTime<Utc>,
    /// What the client said about itself.
    pub client: ClientInfo,
}

impl Record for DownloadState {
    const SCHEMA: S = DOWNLOAD_STATE;

    fn to_value(&self) -> Value {
        hit_value(&self.filename, &self.host, &self.timestamp, &self.client)
    }

    fn from_value(v: &Value) -> Conv<Self> {
        let (filename, host, timestamp, rest) = hit_from(v, "filename")?;
        Ok(DownloadState {
            filename,
            host,
            timestamp,
            client: ClientInfo::from_values(rest)?,
        })
    }
}

/// `LOGSEARCH`: pip looked a package up in the simple index.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchState {
    /// The package searched for.
    pub package: String,
    /// Client address.
    pub host: String,
    /// When (UTC).
    pub timestamp: DateTime<Utc>,
    /// What the client said about itself.
    pub client: ClientInfo,
}

impl Record for SearchState {
    const SCHEMA: S = SEARCH_STATE;

    fn to_value(&self) -> Value {
        hit_value(&self.package, &self.host, &self.timestamp, &self.client)
    }

    fn from_value(v: &Value) -> Conv<Self> {
        let (package, host, timestamp, rest) = hit_from(v, "package")?;
        Ok(SearchState {
            package,
            host,
            timestamp,
            client: ClientInfo::from_values(rest)?,
        })
    }
}

/// `LOGPROJECT`, `LOGJSON` and `LOGPAGE`: a page was viewed. The first
/// field is the package (project page, JSON) or the page name.
#[derive(Debug, Clone, PartialEq)]
pub struct PageHit {
    /// Package name, or page name for `LOGPAGE`.
    pub name: String,
    /// Client address.
    pub host: String,
    /// When (UTC).
    pub timestamp: DateTime<Utc>,
    /// Lower-cased product token of the user agent (may be empty).
    pub user_agent: String,
}

impl Record for PageHit {
    const SCHEMA: S = PAGE_STATE;

    fn to_value(&self) -> Value {
        Value::Array(vec![
            (&self.name).into(),
            (&self.host).into(),
            self.timestamp.into(),
            (&self.user_agent).into(),
        ])
    }

    fn from_value(v: &Value) -> Conv<Self> {
        let a = seq(v, 4, "PageHit")?;
        Ok(PageHit {
            name: text(&a[0], "name")?,
            host: text(&a[1], "host")?,
            timestamp: datetime(&a[2], "timestamp")?,
            user_agent: text(&a[3], "user_agent")?,
        })
    }
}

/// piwheels' `ProjectState` (first field: the package).
pub type ProjectState = PageHit;
/// piwheels' `JSONState` (first field: the package).
pub type JsonState = PageHit;
/// piwheels' `PageState` (first field: the page name).
pub type PageState = PageHit;

#[cfg(test)]
pub(crate) mod samples {
    //! Sample records shared by the unit tests of the message modules.
    use super::*;
    use crate::protocol::value::utc_datetime;

    pub fn ts() -> DateTime<Utc> {
        utc_datetime(2024, 3, 1, 12, 0, 5, 123_456).unwrap()
    }

    pub fn slave_hello() -> SlaveHello {
        SlaveHello {
            build_timeout: TimeDelta::from_secs(10800).unwrap(),
            busy_timeout: TimeDelta::from_secs(300).unwrap(),
            py_version: "311".into(),
            native_abi: "cp311".into(),
            native_platform: "linux_armv7l".into(),
            label: "builder-pi4-01".into(),
            os_name: "Raspbian GNU/Linux".into(),
            os_version: "12 (bookworm)".into(),
            board_revision: "c03114".into(),
            board_serial: "10000000a3f6b2c1".into(),
        }
    }

    pub fn slave_stats() -> SlaveStats {
        SlaveStats {
            timestamp: ts(),
            disk_size: 31_254_904_832,
            disk_free: 12_345_678_901,
            mem_size: 3_978_170_368,
            mem_free: 2_147_483_648,
            swap_size: 104_853_504,
            swap_free: 104_853_504,
            load_average: 0.0,
            cpu_temp: 45.5,
        }
    }

    pub fn file_state() -> FileState {
        FileState {
            filename: "numpy-1.26.4-cp311-cp311-linux_armv7l.whl".into(),
            filesize: 9_123_456,
            filehash: "0bf712fb91e657b4909a162ebd750956ad9e8ac99e6937aa5096eaffc3d87c7e".into(),
            package_tag: "numpy".into(),
            package_version_tag: "1.26.4".into(),
            py_version_tag: "cp311".into(),
            abi_tag: "cp311".into(),
            platform_tag: "linux_armv7l".into(),
            requires_python: Some(">=3.9".into()),
            dependencies: vec![
                (
                    "apt".into(),
                    vec!["libatlas3-base".into(), "libgfortran5".into()],
                ),
                ("pip".into(), vec![]),
                ("".into(), vec![]),
            ],
            location: "/simple".into(),
        }
    }

    pub fn build_state() -> BuildState {
        BuildState {
            slave_id: 0,
            package: "numpy".into(),
            version: "1.26.4".into(),
            abi_tag: "cp311".into(),
            status: true,
            duration: TimeDelta::new(0, 123, 456_789).unwrap(),
            output: "ok".into(),
            files: vec![file_state()],
        }
    }

    pub fn master_stats() -> MasterStats {
        MasterStats {
            timestamp: ts(),
            packages_built: 412_345,
            builds_last_hour: vec![("cp39".into(), 12), ("cp311".into(), 87)],
            builds_time: TimeDelta::new(1234, 5678, 901_234).unwrap(),
            builds_size: 9_876_543_210_987,
            builds_pending: vec![("cp39".into(), 1), ("cp311".into(), 45678)],
            new_last_hour: 321,
            files_count: 1_234_567,
            downloads_last_hour: 45678,
            downloads_last_month: 98_765_432,
            downloads_all: 1_234_567_890,
            disk_size: 4_000_787_030_016,
            disk_free: 1_234_567_890_123,
            mem_size: 8_220_102_656,
            mem_free: 4_110_051_328,
            swap_size: 0,
            swap_free: 0,
            load_average: 1.25,
            cpu_temp: 52.0,
        }
    }

    pub fn master_hello() -> MasterHello {
        MasterHello {
            timestamp: ts(),
            label: "piwheels-master".into(),
            os_name: "Debian GNU/Linux".into(),
            os_version: "12 (bookworm)".into(),
            board_revision: "unknown".into(),
            board_serial: "unknown".into(),
        }
    }

    pub fn client() -> ClientInfo {
        ClientInfo {
            arch: Some("armv7l".into()),
            installer_name: Some("pip".into()),
            ..Default::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::samples::*;
    use super::*;

    fn check<R: Record + PartialEq + std::fmt::Debug>(r: R) {
        let v = r.to_value();
        assert!(R::SCHEMA.validate(&v), "{v}");
        assert_eq!(R::from_value(&v).unwrap(), r);
        // One element short or long is rejected, as is a non-array.
        if let Value::Array(mut a) = v.clone() {
            a.push(Value::Null);
            assert!(R::from_value(&Value::Array(a.clone())).is_err());
            assert!(!R::SCHEMA.validate(&Value::Array(a.clone())));
            a.truncate(a.len() - 2);
            assert!(R::from_value(&Value::Array(a)).is_err());
        }
        assert!(R::from_value(&Value::Null).is_err());
    }

    #[test]
    fn records_round_trip() {
        check(slave_hello());
        check(slave_stats());
        check(file_state());
        check(build_state());
        check(master_stats());
        check(master_hello());
        check(DownloadState {
            filename: "x.whl".into(),
            host: "::1".into(),
            timestamp: ts(),
            client: client(),
        });
        check(SearchState {
            package: "x".into(),
            host: "::1".into(),
            timestamp: ts(),
            client: ClientInfo::default(),
        });
        check(PageHit {
            name: "home".into(),
            host: "::1".into(),
            timestamp: ts(),
            user_agent: "".into(),
        });
    }

    #[test]
    fn dependencies_keep_wire_order() {
        let v = file_state().to_value();
        let deps = &v.as_array().unwrap()[9];
        let keys: Vec<_> = deps
            .as_map()
            .unwrap()
            .iter()
            .map(|(k, _)| k.as_str().unwrap())
            .collect();
        assert_eq!(keys, ["apt", "pip", ""]);
    }

    #[test]
    fn out_of_range_values_are_errors() {
        let mut v = slave_stats().to_value();
        if let Value::Array(a) = &mut v {
            a[1] = Value::Int(-1);
        }
        assert!(SLAVE_STATS.validate(&v));
        assert_eq!(SlaveStats::from_value(&v).unwrap_err().field(), "disk_size");
        if let Value::Array(a) = &mut v {
            a[1] = Value::Int(1 << 64);
        }
        assert!(SlaveStats::from_value(&v).is_err());
        if let Value::Array(a) = &mut v {
            a[1] = Value::Bool(true);
        }
        assert_eq!(SlaveStats::from_value(&v).unwrap().disk_size, 1);
    }
}
