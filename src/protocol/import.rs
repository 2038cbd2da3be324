//! The import/admin protocol (`mr_chase`): piw-import, piw-add, piw-remove
//! and piw-rebuild (REQ) talk to MrChase (ROUTER, ipc import queue).
//!
//! 0.23 specifics: `REMOVE` is gone (replaced by `REMPKG`/`REMVER`),
//! `ADDPKG`/`ADDVER` are new, REBUILD parts are `HOME`, `SEARCH`,
//! `PROJECT` and `BOTH`, and `DONE` carries a string saying what was done
//! (`IMPORT`, `REBUILD`, `NEWPKG`, `UPDPKG`, `NEWVER`, `UPDVER`, `SKIPPKG`,
//! `DELPKGBLD`, `DELPKG`, `SKIPVER`, `YANKVER`, `DELVERBLD`, `DELVER`).

use chrono::{DateTime, Utc};

use super::convert::{
    Conv, FieldError, boolean, datetime, opt_text, seq, text, text_list, text_list_value,
};
use super::error::DecodeError;
use super::message::{WireMessage, convert_data, expect_bare};
use super::records::{BUILD_STATE, BuildState, Record};
use super::schema::{Direction, Message, Protocol, Schema as S};
use super::value::Value;

const OPT_STR: S = S::Any(&[S::Str, S::Null]);

/// piwheels' `mr_chase` protocol.
pub static MR_CHASE: Protocol = Protocol {
    name: "mr_chase",
    recv: &[
        ("IMPORT", BUILD_STATE),
        (
            "ADDPKG",
            S::Seq(&[S::Str, S::Str, S::Str, S::Bool, S::List(&S::Str)]),
        ),
        (
            "ADDVER",
            S::Seq(&[
                S::Str,
                S::Str,
                S::Str,
                S::Bool,
                S::DateTime,
                S::Bool,
                S::Bool,
                S::List(&S::Str),
            ]),
        ),
        ("REMPKG", S::Seq(&[S::Str, S::Bool, S::Str])),
        (
            "REMVER",
            S::Seq(&[S::Str, S::Str, S::Bool, S::Str, S::Bool]),
        ),
        (
            "REBUILD",
            S::Any(&[
                S::Seq(&[S::Literal("HOME")]),
                S::Seq(&[S::Literal("SEARCH")]),
                S::Seq(&[S::Literal("PROJECT"), OPT_STR]),
                S::Seq(&[S::Literal("BOTH"), OPT_STR]),
            ]),
        ),
        ("SENT", S::NoData),
    ],
    send: &[("SEND", S::Str), ("ERROR", S::Str), ("DONE", S::Str)],
};

/// `ADDPKG`: add or update a package (piw-add).
#[derive(Debug, Clone, PartialEq)]
pub struct AddPackage {
    /// Package name.
    pub package: String,
    /// Its description.
    pub description: String,
    /// Skip reason ("" for none).
    pub skip: String,
    /// Clear an existing skip?
    pub unskip: bool,
    /// Alternative names.
    pub aliases: Vec<String>,
}

/// `ADDVER`: add or update a version (piw-add).
#[derive(Debug, Clone, PartialEq)]
pub struct AddVersion {
    /// Package name.
    pub package: String,
    /// Version.
    pub version: String,
    /// Skip reason ("" for none).
    pub skip: String,
    /// Clear an existing skip?
    pub unskip: bool,
    /// Release time.
    pub released: DateTime<Utc>,
    /// Mark yanked?
    pub yank: bool,
    /// Clear a yank?
    pub unyank: bool,
    /// Alternative package names.
    pub aliases: Vec<String>,
}

/// `REMPKG`: remove a package, or skip it, or delete its builds.
#[derive(Debug, Clone, PartialEq)]
pub struct RemovePackage {
    /// Package name.
    pub package: String,
    /// Delete the builds only?
    pub builds: bool,
    /// Skip reason ("" for none).
    pub skip: String,
}

/// `REMVER`: remove a version, or skip, yank or delete its builds.
#[derive(Debug, Clone, PartialEq)]
pub struct RemoveVersion {
    /// Package name.
    pub package: String,
    /// Version.
    pub version: String,
    /// Delete the builds only?
    pub builds: bool,
    /// Skip reason ("" for none).
    pub skip: String,
    /// Mark yanked?
    pub yank: bool,
}

/// What `REBUILD` asks for. `None` for a package means every package.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RebuildPart {
    /// `["HOME"]`: the home page.
    Home,
    /// `["SEARCH"]`: the search index.
    Search,
    /// `["PROJECT", pkg]`: project page(s).
    Project(Option<String>),
    /// `["BOTH", pkg]`: project page(s) and simple index(es).
    Both(Option<String>),
}

impl RebuildPart {
    fn to_value(&self) -> Value {
        let pair = |part: &str, pkg: &Option<String>| {
            Value::Array(vec![part.into(), pkg.as_deref().into()])
        };
        match self {
            RebuildPart::Home => Value::Array(vec!["HOME".into()]),
            RebuildPart::Search => Value::Array(vec!["SEARCH".into()]),
            RebuildPart::Project(p) => pair("PROJECT", p),
            RebuildPart::Both(p) => pair("BOTH", p),
        }
    }

    fn from_value(v: &Value) -> Conv<Self> {
        let bad = FieldError::new(
            "REBUILD",
            "expected [HOME], [SEARCH], [PROJECT, pkg] or [BOTH, pkg]",
        );
        let a = v.as_array().ok_or(bad.clone())?;
        match (a.first().and_then(Value::as_str), a.len()) {
            (Some("HOME"), 1) => Ok(RebuildPart::Home),
            (Some("SEARCH"), 1) => Ok(RebuildPart::Search),
            (Some("PROJECT"), 2) => Ok(RebuildPart::Project(opt_text(&a[1], "package")?)),
            (Some("BOTH"), 2) => Ok(RebuildPart::Both(opt_text(&a[1], "package")?)),
            _ => Err(bad),
        }
    }
}

/// What an import/admin client sends to the master.
#[derive(Debug, Clone, PartialEq)]
pub enum ImportRequest {
    /// `IMPORT BuildState` (the client sends slave id 0).
    Import(BuildState),
    /// `ADDPKG`.
    AddPkg(AddPackage),
    /// `ADDVER`.
    AddVer(AddVersion),
    /// `REMPKG`.
    RemPkg(RemovePackage),
    /// `REMVER`.
    RemVer(RemoveVersion),
    /// `REBUILD part`.
    Rebuild(RebuildPart),
    /// `SENT`: a file transfer finished.
    Sent,
}

impl WireMessage for ImportRequest {
    const DIRECTION: Direction = Direction::ToMaster;

    fn protocol() -> &'static Protocol {
        &MR_CHASE
    }

    fn name(&self) -> &'static str {
        match self {
            ImportRequest::Import(_) => "IMPORT",
            ImportRequest::AddPkg(_) => "ADDPKG",
            ImportRequest::AddVer(_) => "ADDVER",
            ImportRequest::RemPkg(_) => "REMPKG",
            ImportRequest::RemVer(_) => "REMVER",
            ImportRequest::Rebuild(_) => "REBUILD",
            ImportRequest::Sent => "SENT",
        }
    }

    fn data(&self) -> Option<Value> {
        Some(match self {
            ImportRequest::Import(b) => b.to_value(),
            ImportRequest::AddPkg(p) => Value::Array(vec![
                (&p.package).into(),
                (&p.description).into(),
                (&p.skip).into(),
                p.unskip.into(),
                text_list_value(&p.aliases),
            ]),
            ImportRequest::AddVer(v) => Value::Array(vec![
                (&v.package).into(),
                (&v.version).into(),
                (&v.skip).into(),
                v.unskip.into(),
                v.released.into(),
                v.yank.into(),
                v.unyank.into(),
                text_list_value(&v.aliases),
            ]),
            ImportRequest::RemPkg(p) => {
                Value::Array(vec![(&p.package).into(), p.builds.into(), (&p.skip).into()])
            }
            ImportRequest::RemVer(v) => Value::Array(vec![
                (&v.package).into(),
                (&v.version).into(),
                v.builds.into(),
                (&v.skip).into(),
                v.yank.into(),
            ]),
            ImportRequest::Rebuild(part) => part.to_value(),
            ImportRequest::Sent => return None,
        })
    }

    fn from_message(msg: &Message) -> Result<Self, DecodeError> {
        match msg.name.as_str() {
            "IMPORT" => convert_data(msg, BuildState::from_value).map(ImportRequest::Import),
            "ADDPKG" => convert_data(msg, |v| {
                let a = seq(v, 5, "ADDPKG")?;
                Ok(ImportRequest::AddPkg(AddPackage {
                    package: text(&a[0], "package")?,
                    description: text(&a[1], "description")?,
                    skip: text(&a[2], "skip")?,
                    unskip: boolean(&a[3], "unskip")?,
                    aliases: text_list(&a[4], "aliases")?,
                }))
            }),
            "ADDVER" => convert_data(msg, |v| {
                let a = seq(v, 8, "ADDVER")?;
                Ok(ImportRequest::AddVer(AddVersion {
                    package: text(&a[0], "package")?,
                    version: text(&a[1], "version")?,
                    skip: text(&a[2], "skip")?,
                    unskip: boolean(&a[3], "unskip")?,
                    released: datetime(&a[4], "released")?,
                    yank: boolean(&a[5], "yank")?,
                    unyank: boolean(&a[6], "unyank")?,
                    aliases: text_list(&a[7], "aliases")?,
                }))
            }),
            "REMPKG" => convert_data(msg, |v| {
                let a = seq(v, 3, "REMPKG")?;
                Ok(ImportRequest::RemPkg(RemovePackage {
                    package: text(&a[0], "package")?,
                    builds: boolean(&a[1], "builds")?,
                    skip: text(&a[2], "skip")?,
                }))
            }),
            "REMVER" => convert_data(msg, |v| {
                let a = seq(v, 5, "REMVER")?;
                Ok(ImportRequest::RemVer(RemoveVersion {
                    package: text(&a[0], "package")?,
                    version: text(&a[1], "version")?,
                    builds: boolean(&a[2], "builds")?,
                    skip: text(&a[3], "skip")?,
                    yank: boolean(&a[4], "yank")?,
                }))
            }),
            "REBUILD" => convert_data(msg, RebuildPart::from_value).map(ImportRequest::Rebuild),
            "SENT" => expect_bare(msg, ImportRequest::Sent),
            other => Err(DecodeError::unknown_message(other)),
        }
    }
}

/// What the master replies to an import/admin client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImportReply {
    /// `SEND filename`: transfer this file.
    Send(String),
    /// `ERROR message`.
    Error(String),
    /// `DONE what`: finished; says what was done (e.g. `"IMPORT"`).
    Done(String),
}

impl WireMessage for ImportReply {
    const DIRECTION: Direction = Direction::FromMaster;

    fn protocol() -> &'static Protocol {
        &MR_CHASE
    }

    fn name(&self) -> &'static str {
        match self {
            ImportReply::Send(_) => "SEND",
            ImportReply::Error(_) => "ERROR",
            ImportReply::Done(_) => "DONE",
        }
    }

    fn data(&self) -> Option<Value> {
        let (ImportReply::Send(s) | ImportReply::Error(s) | ImportReply::Done(s)) = self;
        Some(s.into())
    }

    fn from_message(msg: &Message) -> Result<Self, DecodeError> {
        let make = match msg.name.as_str() {
            "SEND" => ImportReply::Send,
            "ERROR" => ImportReply::Error,
            "DONE" => ImportReply::Done,
            other => return Err(DecodeError::unknown_message(other)),
        };
        convert_data(msg, |v| text(v, "message")).map(make)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::records::samples::*;
    use crate::protocol::test_support::round_trip;

    #[test]
    fn every_message_both_ways() {
        let requests = vec![
            ImportRequest::Import(build_state()),
            ImportRequest::AddPkg(AddPackage {
                package: "foo-bar".into(),
                description: "Föö".into(),
                skip: "".into(),
                unskip: true,
                aliases: vec!["Foo_Bar".into()],
            }),
            ImportRequest::AddVer(AddVersion {
                package: "foo-bar".into(),
                version: "0.2.0".into(),
                skip: "broken".into(),
                unskip: false,
                released: ts(),
                yank: true,
                unyank: false,
                aliases: vec![],
            }),
            ImportRequest::RemPkg(RemovePackage {
                package: "foo-bar".into(),
                builds: true,
                skip: "license".into(),
            }),
            ImportRequest::RemVer(RemoveVersion {
                package: "foo-bar".into(),
                version: "0.1".into(),
                builds: false,
                skip: "".into(),
                yank: true,
            }),
            ImportRequest::Rebuild(RebuildPart::Home),
            ImportRequest::Rebuild(RebuildPart::Search),
            ImportRequest::Rebuild(RebuildPart::Project(None)),
            ImportRequest::Rebuild(RebuildPart::Project(Some("numpy".into()))),
            ImportRequest::Rebuild(RebuildPart::Both(None)),
            ImportRequest::Rebuild(RebuildPart::Both(Some("numpy".into()))),
            ImportRequest::Sent,
        ];
        for m in requests {
            round_trip(&m);
        }
        for m in [
            ImportReply::Send("x.whl".into()),
            ImportReply::Error("NOPKG".into()),
            ImportReply::Done("IMPORT".into()),
        ] {
            round_trip(&m);
        }
    }

    #[test]
    fn rebuild_parts_are_literal() {
        for bad in [
            Value::Array(vec!["home".into()]),
            Value::Array(vec!["HOME".into(), Value::Null]),
            Value::Array(vec!["PROJECT".into()]),
            Value::Array(vec!["PKGPROJ".into(), "x".into()]),
            Value::Array(vec!["BOTH".into(), Value::Int(1)]),
            "HOME".into(),
        ] {
            assert!(RebuildPart::from_value(&bad).is_err(), "{bad}");
            assert!(
                !MR_CHASE
                    .schema(Direction::ToMaster, "REBUILD")
                    .unwrap()
                    .validate(&bad),
                "{bad}"
            );
        }
    }
}
