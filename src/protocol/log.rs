//! The log protocol (`lumberjack`): piw-logger (PUSH) feeds web-server hits
//! to Lumberjack (PULL, ipc log queue). Fire and forget: no replies.

use super::error::DecodeError;
use super::message::{WireMessage, convert_data};
use super::records::{
    DOWNLOAD_STATE, DownloadState, JSON_STATE, JsonState, PAGE_STATE, PROJECT_STATE, PageState,
    ProjectState, Record, SEARCH_STATE, SearchState,
};
use super::schema::{Direction, Message, Protocol};
use super::value::Value;

/// piwheels' `lumberjack` protocol.
pub static LUMBERJACK: Protocol = Protocol {
    name: "lumberjack",
    recv: &[
        ("LOGDOWNLOAD", DOWNLOAD_STATE),
        ("LOGSEARCH", SEARCH_STATE),
        ("LOGPROJECT", PROJECT_STATE),
        ("LOGJSON", JSON_STATE),
        ("LOGPAGE", PAGE_STATE),
    ],
    send: &[],
};

/// A web-server hit worth recording.
#[derive(Debug, Clone, PartialEq)]
pub enum LogMessage {
    /// `LOGDOWNLOAD`: a wheel download.
    Download(DownloadState),
    /// `LOGSEARCH`: a simple-index lookup.
    Search(SearchState),
    /// `LOGPROJECT`: a project page view.
    Project(ProjectState),
    /// `LOGJSON`: a project JSON fetch.
    Json(JsonState),
    /// `LOGPAGE`: another page view.
    Page(PageState),
}

impl WireMessage for LogMessage {
    const DIRECTION: Direction = Direction::ToMaster;

    fn protocol() -> &'static Protocol {
        &LUMBERJACK
    }

    fn name(&self) -> &'static str {
        match self {
            LogMessage::Download(_) => "LOGDOWNLOAD",
            LogMessage::Search(_) => "LOGSEARCH",
            LogMessage::Project(_) => "LOGPROJECT",
            LogMessage::Json(_) => "LOGJSON",
            LogMessage::Page(_) => "LOGPAGE",
        }
    }

    fn data(&self) -> Option<Value> {
        Some(match self {
            LogMessage::Download(d) => d.to_value(),
            LogMessage::Search(s) => s.to_value(),
            LogMessage::Project(p) | LogMessage::Json(p) | LogMessage::Page(p) => p.to_value(),
        })
    }

    fn from_message(msg: &Message) -> Result<Self, DecodeError> {
        match msg.name.as_str() {
            "LOGDOWNLOAD" => convert_data(msg, DownloadState::from_value).map(LogMessage::Download),
            "LOGSEARCH" => convert_data(msg, SearchState::from_value).map(LogMessage::Search),
            "LOGPROJECT" => convert_data(msg, ProjectState::from_value).map(LogMessage::Project),
            "LOGJSON" => convert_data(msg, JsonState::from_value).map(LogMessage::Json),
            "LOGPAGE" => convert_data(msg, PageState::from_value).map(LogMessage::Page),
            other => Err(DecodeError::unknown_message(other)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::records::samples::*;
    use crate::protocol::records::{ClientInfo, PageHit};
    use crate::protocol::test_support::round_trip;

    #[test]
    fn every_message() {
        let hit = PageHit {
            name: "numpy".into(),
            host: "203.0.113.9".into(),
            timestamp: ts(),
            user_agent: "pip".into(),
        };
        for m in [
            LogMessage::Download(DownloadState {
                filename: "numpy-1.26.4-cp311-cp311-linux_armv7l.whl".into(),
                host: "2001:db8::17".into(),
                timestamp: ts(),
                client: client(),
            }),
            LogMessage::Search(SearchState {
                package: "numpy".into(),
                host: "192.0.2.1".into(),
                timestamp: ts(),
                client: ClientInfo::default(),
            }),
            LogMessage::Project(hit.clone()),
            LogMessage::Json(hit.clone()),
            LogMessage::Page(hit),
        ] {
            round_trip(&m);
        }
    }
}
