//! The document returned by `get_project_data(pkg)`, typed.
//!
//! The JSON is built by PostgreSQL; we read it with `serde_json::Value` and
//! pick the fields by hand (no derive machinery). As in piwheels, an empty
//! dependency list may arrive as `{}` rather than `[]`, and both become an
//! empty set; `released` is a timestamp with a UTC offset.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, NaiveDateTime, Utc};
use serde_json::Value;

/// Everything the web writer needs about one project.
#[derive(Debug, Clone, PartialEq)]
pub struct ProjectData {
    /// Display name (the most recently seen spelling), if any was recorded.
    pub name: Option<String>,
    /// PyPI summary (None when the package does not exist).
    pub description: Option<String>,
    /// Releases by version string.
    pub releases: BTreeMap<String, Release>,
}

/// One release of a project.
#[derive(Debug, Clone, PartialEq)]
pub struct Release {
    pub yanked: bool,
    pub released: DateTime<Utc>,
    /// The version's skip reason, else the package's ('' when neither).
    pub skip: String,
    /// Wheels by filename.
    pub files: BTreeMap<String, FileInfo>,
    /// Build state per ABI.
    pub abis: BTreeMap<String, AbiStatus>,
}

/// One wheel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileInfo {
    pub location: String,
    pub hash: String,
    pub size: i64,
    pub abi_builder: String,
    pub abi_file: String,
    pub platform: String,
    pub requires_python: Option<String>,
    pub apt_dependencies: BTreeSet<String>,
    pub pip_dependencies: BTreeSet<String>,
}

/// Build state of a release for one ABI.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AbiStatus {
    pub status: BuildStatus,
    pub build_id: Option<i32>,
}

/// The `status` values of the `abis` object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BuildStatus {
    Skip,
    Success,
    Fail,
    Pending,
    Error,
}

impl BuildStatus {
    /// The status named by its JSON string.
    pub fn parse(s: &str) -> Option<BuildStatus> {
        Some(match s {
            "skip" => BuildStatus::Skip,
            "success" => BuildStatus::Success,
            "fail" => BuildStatus::Fail,
            "pending" => BuildStatus::Pending,
            "error" => BuildStatus::Error,
            _ => return None,
        })
    }

    /// The JSON string.
    pub fn as_str(self) -> &'static str {
        match self {
            BuildStatus::Skip => "skip",
            BuildStatus::Success => "success",
            BuildStatus::Fail => "fail",
            BuildStatus::Pending => "pending",
            BuildStatus::Error => "error",
        }
    }
}

type R<T> = Result<T, String>;

fn obj<'a>(v: &'a Value, what: &str) -> R<&'a serde_json::Map<String, Value>> {
    match v {
        Value::Object(m) => Ok(m),
        // json_object_agg over nothing is NULL; treat as empty.
        Value::Null => {
            static EMPTY: std::sync::OnceLock<serde_json::Map<String, Value>> =
                std::sync::OnceLock::new();
            Ok(EMPTY.get_or_init(serde_json::Map::new))
        }
        _ => Err(format!("{what} is not an object")),
    }
}

fn string(v: Option<&Value>, what: &str) -> R<String> {
    match v {
        Some(Value::String(s)) => Ok(s.clone()),
        _ => Err(format!("{what} is not a string")),
    }
}

fn opt_string(v: Option<&Value>, what: &str) -> R<Option<String>> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        _ => Err(format!("{what} is not a string or null")),
    }
}

fn string_set(v: Option<&Value>, what: &str) -> R<BTreeSet<String>> {
    match v {
        None | Some(Value::Null) => Ok(BTreeSet::new()),
        Some(Value::Object(m)) if m.is_empty() => Ok(BTreeSet::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|i| match i {
                Value::String(s) => Ok(s.clone()),
                _ => Err(format!("{what} holds a non-string")),
            })
            .collect(),
        _ => Err(format!("{what} is not a list")),
    }
}

/// Parses PostgreSQL's JSON rendering of a timestamptz, e.g.
/// `2020-01-02T03:04:05+00:00`, `2020-01-02T03:04:05.5+01`,
/// `2020-01-02T03:04:05-03:30`.
pub(crate) fn parse_timestamptz(s: &str) -> Option<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    // An offset of whole hours is written without minutes: "+01".
    let split = s.rfind(['+', '-']).filter(|&i| i > 10)?;
    let (local, offset) = s.split_at(split);
    let sign = if offset.starts_with('-') { -1 } else { 1 };
    let mut parts = offset[1..].split(':');
    let hours: i64 = parts.next()?.parse().ok()?;
    let minutes: i64 = parts.next().map_or(Some(0), |m| m.parse().ok())?;
    let seconds: i64 = parts.next().map_or(Some(0), |m| m.parse().ok())?;
    let naive = NaiveDateTime::parse_from_str(local, "%Y-%m-%dT%H:%M:%S%.f").ok()?;
    let shift = chrono::Duration::seconds(sign * (hours * 3600 + minutes * 60 + seconds));
    Some((naive - shift).and_utc())
}

impl ProjectData {
    /// Reads the JSON text `get_project_data` returns.
    pub fn from_json(text: &str) -> Result<ProjectData, String> {
        let v: Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
        let top = obj(&v, "the document")?;
        let mut releases = BTreeMap::new();
        for (version, rel) in obj(top.get("releases").unwrap_or(&Value::Null), "releases")? {
            let rel = obj(rel, "a release")?;
            let released_text = string(rel.get("released"), "released")?;
            let released = parse_timestamptz(&released_text)
                .ok_or_else(|| format!("bad timestamp {released_text:?}"))?;
            let mut files = BTreeMap::new();
            for (filename, f) in obj(rel.get("files").unwrap_or(&Value::Null), "files")? {
                let f = obj(f, "a file")?;
                files.insert(
                    filename.clone(),
                    FileInfo {
                        location: string(f.get("location"), "location")?,
                        hash: string(f.get("hash"), "hash")?,
                        size: f
                            .get("size")
                            .and_then(Value::as_i64)
                            .ok_or("size is not an integer")?,
                        abi_builder: string(f.get("abi_builder"), "abi_builder")?,
                        abi_file: string(f.get("abi_file"), "abi_file")?,
                        platform: string(f.get("platform"), "platform")?,
                        requires_python: opt_string(f.get("requires_python"), "requires_python")?,
                        apt_dependencies: string_set(
                            f.get("apt_dependencies"),
                            "apt_dependencies",
                        )?,
                        pip_dependencies: string_set(
                            f.get("pip_dependencies"),
                            "pip_dependencies",
                        )?,
                    },
                );
            }
            let mut abis = BTreeMap::new();
            for (abi, a) in obj(rel.get("abis").unwrap_or(&Value::Null), "abis")? {
                let a = obj(a, "an abi")?;
                let text = string(a.get("status"), "status")?;
                let status =
                    BuildStatus::parse(&text).ok_or_else(|| format!("unknown status {text:?}"))?;
                let build_id = match a.get("build_id") {
                    None | Some(Value::Null) => None,
                    Some(v) => Some(
                        v.as_i64()
                            .and_then(|i| i32::try_from(i).ok())
                            .ok_or("build_id is not an integer")?,
                    ),
                };
                abis.insert(abi.clone(), AbiStatus { status, build_id });
            }
            releases.insert(
                version.clone(),
                Release {
                    yanked: rel.get("yanked").and_then(Value::as_bool).unwrap_or(false),
                    released,
                    skip: opt_string(rel.get("skip"), "skip")?.unwrap_or_default(),
                    files,
                    abis,
                },
            );
        }
        Ok(ProjectData {
            name: opt_string(top.get("name"), "name")?,
            description: opt_string(top.get("description"), "description")?,
            releases,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn timestamps_in_postgres_forms() {
        let want = Utc.with_ymd_and_hms(2020, 1, 2, 3, 4, 5).unwrap();
        assert_eq!(parse_timestamptz("2020-01-02T03:04:05+00:00"), Some(want));
        assert_eq!(parse_timestamptz("2020-01-02T04:04:05+01"), Some(want));
        assert_eq!(parse_timestamptz("2020-01-01T23:34:05-03:30"), Some(want));
        assert_eq!(
            parse_timestamptz("2020-01-02T03:04:05.25+00:00"),
            Some(want + chrono::Duration::milliseconds(250))
        );
        assert_eq!(parse_timestamptz("nonsense"), None);
    }

    #[test]
    fn empty_lists_may_be_objects() {
        let doc = r#"{"name" : "Foo", "description" : "d", "releases" : {"1.0" :
            {"yanked" : false, "released" : "2020-01-02T03:04:05+00:00", "skip" : "",
             "files" : {"foo-1.0-py3-none-any.whl" : {"location" : "/simple",
               "hash" : "ab", "size" : 3, "abi_builder" : "cp37m", "abi_file" : "none",
               "platform" : "any", "requires_python" : null,
               "apt_dependencies" : {}, "pip_dependencies" : ["bar"]}},
             "abis" : {"cp37m" : {"status" : "success", "build_id" : 1}}}}}"#;
        let p = ProjectData::from_json(doc).unwrap();
        let r = &p.releases["1.0"];
        let f = &r.files["foo-1.0-py3-none-any.whl"];
        assert!(f.apt_dependencies.is_empty());
        assert_eq!(f.pip_dependencies.iter().collect::<Vec<_>>(), ["bar"]);
        assert_eq!(r.abis["cp37m"].status, BuildStatus::Success);
        assert_eq!(p.name.as_deref(), Some("Foo"));
    }
}
