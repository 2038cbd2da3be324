//! The master's internal protocols, as schema tables only.
//!
//! These never cross the network in piwheels, but a Rust master that keeps
//! piwheels' task layout (or talks to a Python task during migration) can
//! validate and encode them with [`Protocol::decode`]/[`Protocol::encode`].
//! "Master" here is whichever side holds piwheels' un-reversed `Protocol`
//! (for `cloud_gazer` that is the REQ client, for `the_oracle` the oracle).

use super::records::{
    BUILD_STATE, DOWNLOAD_STATE, FILE_STATE, MASTER_STATS, PAGE_STATE, SEARCH_STATE,
};
use super::schema::{Protocol, Schema as S};

const STR2: S = S::Seq(&[S::Str, S::Str]);
const OPT_INT: S = S::Any(&[S::Int, S::Null]);
const OPT_DT: S = S::Any(&[S::DateTime, S::Null]);

/// `task_control`: the main thread → each task's control queue.
pub static TASK_CONTROL: Protocol = Protocol {
    name: "task_control",
    recv: &[
        ("PAUSE", S::NoData),
        ("RESUME", S::NoData),
        ("QUIT", S::NoData),
    ],
    send: &[],
};

/// `slave_driver_control`: task control plus the `master_control` verbs.
pub static SLAVE_DRIVER_CONTROL: Protocol = Protocol {
    name: "slave_driver_control",
    recv: &[
        ("PAUSE", S::NoData),
        ("RESUME", S::NoData),
        ("QUIT", S::NoData),
        ("HELLO", S::NoData),
        ("KILL", OPT_INT),
        ("SLEEP", OPT_INT),
        ("SKIP", OPT_INT),
        ("WAKE", OPT_INT),
    ],
    send: &[],
};

/// `big_brother_control`: task control plus `STATS` (replay stored stats).
pub static BIG_BROTHER_CONTROL: Protocol = Protocol {
    name: "big_brother_control",
    recv: &[
        ("PAUSE", S::NoData),
        ("RESUME", S::NoData),
        ("QUIT", S::NoData),
        ("STATS", S::NoData),
    ],
    send: &[],
};

/// `big_brother`: the stats queue.
pub static BIG_BROTHER: Protocol = Protocol {
    name: "big_brother",
    recv: &[
        ("STATFS", S::Seq(&[S::Int, S::Int])),
        ("STATBQ", S::Dict(&S::Int)),
        ("HOME", S::NoData),
        ("LOGDOWNLOAD", S::Int),
    ],
    send: &[],
};

/// `the_scribe`: the web queue (REQ → TheSecretary) and the scribe queue
/// (TheSecretary → TheScribe); every request is answered `DONE`.
pub static THE_SCRIBE: Protocol = Protocol {
    name: "the_scribe",
    recv: &[
        ("DELVER", STR2),
        ("DELPKG", S::Str),
        ("PROJECT", S::Str),
        ("BOTH", S::Str),
        ("HOME", MASTER_STATS),
        ("SEARCH", S::Dict(&S::Seq(&[S::Int, S::Int]))),
        ("LOG", S::Seq(&[S::Int, S::Str])),
    ],
    send: &[("DONE", S::NoData)],
};

/// `the_architect`: the builds queue (TheArchitect → SlaveDriver).
pub static THE_ARCHITECT: Protocol = Protocol {
    name: "the_architect",
    recv: &[],
    send: &[("QUEUE", S::Dict(&S::List(&STR2)))],
};

/// `cloud_gazer`: the skip socket (CloudGazer/MrChase REQ → SlaveDriver REP).
pub static CLOUD_GAZER: Protocol = Protocol {
    name: "cloud_gazer",
    recv: &[("OK", S::NoData)],
    send: &[("DELVER", STR2), ("DELPKG", S::Str)],
};

/// `file_juggler_files`: the file queue is raw multipart frames, not CBOR,
/// so this table is empty (the frames are in `protocol::file`).
pub static FILE_JUGGLER_FILES: Protocol = Protocol {
    name: "file_juggler_files",
    recv: &[],
    send: &[],
};

/// `file_juggler_fs`: FsClient (REQ) → FileJuggler (REP).
pub static FILE_JUGGLER_FS: Protocol = Protocol {
    name: "file_juggler_fs",
    recv: &[
        ("EXPECT", S::Seq(&[S::Int, FILE_STATE])),
        ("VERIFY", S::Seq(&[S::Int, S::Str])),
    ],
    send: &[("OK", S::Extra), ("ERROR", S::Str)],
};

/// `the_oracle`: DbClient (REQ) → Seraph → TheOracle. The `OK` result is
/// `Extra`, so it may hold sets, maps, datetimes, …
pub static THE_ORACLE: Protocol = Protocol {
    name: "the_oracle",
    recv: &[
        ("ALLPKGS", S::NoData),
        ("ALLVERS", S::NoData),
        ("NEWPKG", S::Seq(&[S::Str, S::Str, S::Str])),
        ("NEWVER", S::Seq(&[S::Str, S::Str, OPT_DT, S::Str])),
        ("NEWPKGNAME", S::Seq(&[S::Str, S::Str, OPT_DT])),
        ("GETPKGNAMES", S::Str),
        ("SETDESC", STR2),
        ("SKIPPKG", STR2),
        ("SKIPVER", S::Seq(&[S::Str, S::Str, S::Str])),
        ("DELPKG", S::Str),
        ("DELVER", STR2),
        ("YANKVER", STR2),
        ("UNYANKVER", STR2),
        ("LOGDOWNLOAD", DOWNLOAD_STATE),
        ("LOGSEARCH", SEARCH_STATE),
        ("LOGPROJECT", PAGE_STATE),
        ("LOGJSON", PAGE_STATE),
        ("LOGPAGE", PAGE_STATE),
        ("LOGBUILD", BUILD_STATE),
        ("DELBUILD", STR2),
        ("PKGFILES", S::Str),
        ("PROJDATA", S::Str),
        ("VERFILES", STR2),
        ("GETSKIP", STR2),
        ("PKGEXISTS", S::Str),
        ("PKGDELETED", S::Str),
        ("VEREXISTS", STR2),
        ("VERSDELETED", S::Str),
        ("GETABIS", S::Bool),
        ("GETPYPI", S::NoData),
        ("SETPYPI", S::Int),
        ("GETSTATS", S::NoData),
        ("INITSTATS", S::NoData),
        ("GETSEARCH", S::NoData),
        ("FILEDEPS", S::Str),
        ("SAVERWP", S::List(&S::Seq(&[S::Str, S::DateTime, S::Str]))),
        ("LOADRWP", S::NoData),
    ],
    send: &[("OK", S::Extra), ("ERROR", S::Str)],
};

/// `sense_stick`: inside piw-sense only (joystick thread → main thread).
pub static SENSE_STICK: Protocol = Protocol {
    name: "sense_stick",
    recv: &[],
    send: &[("EVENT", S::Seq(&[S::DateTime, S::Str, S::Bool, S::Bool]))],
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::schema::Direction;
    use crate::protocol::value::Value;

    #[test]
    fn oracle_ok_accepts_anything_but_needs_data() {
        let d = Direction::FromMaster;
        assert!(
            THE_ORACLE
                .encode(d, "OK", Some(&Value::Set(vec![])))
                .is_ok()
        );
        assert!(THE_ORACLE.encode(d, "OK", None).is_err());
        assert_eq!(
            THE_ORACLE.decode(d, b"\x62OK").unwrap_err().kind(),
            crate::protocol::DecodeErrorKind::MissingData
        );
    }

    #[test]
    fn control_tables_nest() {
        for (name, _) in TASK_CONTROL.recv {
            assert!(
                SLAVE_DRIVER_CONTROL
                    .schema(Direction::ToMaster, name)
                    .is_some()
            );
            assert!(
                BIG_BROTHER_CONTROL
                    .schema(Direction::ToMaster, name)
                    .is_some()
            );
        }
        for (name, schema) in crate::protocol::control::MASTER_CONTROL.recv {
            assert_eq!(
                SLAVE_DRIVER_CONTROL.schema(Direction::ToMaster, name),
                Some(schema)
            );
        }
    }
}
