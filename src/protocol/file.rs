//! File-transfer frames (`file_juggler_files`): raw multipart bytes on the
//! file queue, not CBOR.
//!
//! A peer (slave or piw-import) uses a DEALER socket, so the master's ROUTER
//! sees `[identity, verb, arg…]` with no delimiter frame:
//! - `HELLO <slave id>`: start a transfer (or nudge a stalled one); the
//!   importer uses id 0;
//! - `CHUNK <offset> <bytes>`: data; the offset frame echoes the FETCH's.
//!
//! The master replies `[identity, verb, arg…]`:
//! - `FETCH <offset> <length>`: send these bytes (length ≤ [`CHUNK_SIZE`]);
//! - `DONE`: every byte arrived.
//!
//! Numbers are ASCII decimal. We accept only digits (leading zeros are
//! fine); piwheels' `int()` would also take a sign, surrounding whitespace
//! and underscores, but no real peer sends those. Frames beyond the ones a
//! verb needs are ignored, as piwheels ignores them. Missing frames, which
//! crash piwheels' FileJuggler (IndexError), are a typed error here.

use std::fmt;

/// Largest FETCH length piwheels uses.
pub const CHUNK_SIZE: u64 = 65536;
/// How many FETCHes piwheels keeps in flight at most.
pub const PIPELINE_SIZE: u64 = 10;

/// A frame sequence from a transferring peer (after the identity).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerFrame<'a> {
    /// `HELLO <slave id>`.
    Hello {
        /// The slave id from the slave protocol's ACK (0 for piw-import).
        slave_id: u64,
    },
    /// `CHUNK <offset> <data>`.
    Chunk {
        /// Where `data` belongs in the file (the FETCH's offset).
        offset: u64,
        /// The bytes.
        data: &'a [u8],
    },
}

/// A frame sequence from the master (after the identity).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MasterFrame {
    /// `FETCH <offset> <length>`.
    Fetch {
        /// Start of the range.
        offset: u64,
        /// Its length.
        length: u64,
    },
    /// `DONE`.
    Done,
}

/// Why a file-transfer frame sequence was rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileFrameError {
    /// No frames at all (not even a verb).
    Empty,
    /// A verb this direction does not use (first 32 bytes).
    UnknownVerb(Vec<u8>),
    /// The verb needs a frame that is not there.
    MissingFrame {
        /// The verb.
        verb: &'static str,
        /// The missing frame's name.
        frame: &'static str,
    },
    /// A number frame that is not ASCII decimal or does not fit `u64`.
    BadNumber {
        /// The verb.
        verb: &'static str,
        /// The frame's name.
        frame: &'static str,
        /// Its content (first 32 bytes).
        raw: Vec<u8>,
    },
}

impl fmt::Display for FileFrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FileFrameError::Empty => f.write_str("empty file-transfer message"),
            FileFrameError::UnknownVerb(v) => {
                write!(f, "invalid file-transfer verb: {}", v.escape_ascii())
            }
            FileFrameError::MissingFrame { verb, frame } => write!(f, "{verb} without {frame}"),
            FileFrameError::BadNumber { verb, frame, raw } => {
                write!(f, "{verb}: invalid {frame}: {}", raw.escape_ascii())
            }
        }
    }
}

impl std::error::Error for FileFrameError {}

fn clip(b: &[u8]) -> Vec<u8> {
    b[..b.len().min(32)].to_vec()
}

fn number(raw: &[u8], verb: &'static str, frame: &'static str) -> Result<u64, FileFrameError> {
    let bad = || FileFrameError::BadNumber {
        verb,
        frame,
        raw: clip(raw),
    };
    if raw.is_empty() || !raw.iter().all(u8::is_ascii_digit) {
        return Err(bad());
    }
    raw.iter().try_fold(0u64, |acc, &d| {
        acc.checked_mul(10)
            .and_then(|a| a.checked_add(u64::from(d - b'0')))
            .ok_or_else(bad)
    })
}

fn arg<'a, F: AsRef<[u8]>>(
    frames: &'a [F],
    i: usize,
    verb: &'static str,
    frame: &'static str,
) -> Result<&'a [u8], FileFrameError> {
    frames
        .get(i)
        .map(AsRef::as_ref)
        .ok_or(FileFrameError::MissingFrame { verb, frame })
}

/// Splits the identity frame off what a ROUTER received; `None` if there
/// are no frames at all.
pub fn split_identity<F: AsRef<[u8]>>(frames: &[F]) -> Option<(&[u8], &[F])> {
    let (first, rest) = frames.split_first()?;
    Some((first.as_ref(), rest))
}

/// Parses a peer's frames (those after the identity).
pub fn parse_peer_frames<F: AsRef<[u8]>>(frames: &[F]) -> Result<PeerFrame<'_>, FileFrameError> {
    let verb = frames.first().ok_or(FileFrameError::Empty)?.as_ref();
    match verb {
        b"HELLO" => Ok(PeerFrame::Hello {
            slave_id: number(arg(frames, 1, "HELLO", "slave id")?, "HELLO", "slave id")?,
        }),
        b"CHUNK" => {
            let offset = number(arg(frames, 1, "CHUNK", "offset")?, "CHUNK", "offset")?;
            let data = arg(frames, 2, "CHUNK", "data")?;
            Ok(PeerFrame::Chunk { offset, data })
        }
        other => Err(FileFrameError::UnknownVerb(clip(other))),
    }
}

/// Parses the master's frames (for a peer; after any identity).
pub fn parse_master_frames<F: AsRef<[u8]>>(frames: &[F]) -> Result<MasterFrame, FileFrameError> {
    let verb = frames.first().ok_or(FileFrameError::Empty)?.as_ref();
    match verb {
        b"FETCH" => Ok(MasterFrame::Fetch {
            offset: number(arg(frames, 1, "FETCH", "offset")?, "FETCH", "offset")?,
            length: number(arg(frames, 2, "FETCH", "length")?, "FETCH", "length")?,
        }),
        b"DONE" => Ok(MasterFrame::Done),
        other => Err(FileFrameError::UnknownVerb(clip(other))),
    }
}

impl MasterFrame {
    /// The frames after the identity.
    pub fn to_frames(&self) -> Vec<Vec<u8>> {
        match self {
            MasterFrame::Fetch { offset, length } => vec![
                b"FETCH".to_vec(),
                offset.to_string().into_bytes(),
                length.to_string().into_bytes(),
            ],
            MasterFrame::Done => vec![b"DONE".to_vec()],
        }
    }

    /// The full ROUTER message, identity first.
    pub fn with_identity(&self, identity: &[u8]) -> Vec<Vec<u8>> {
        let mut out = vec![identity.to_vec()];
        out.extend(self.to_frames());
        out
    }
}

impl PeerFrame<'_> {
    /// The frames a peer's DEALER sends.
    pub fn to_frames(&self) -> Vec<Vec<u8>> {
        match self {
            PeerFrame::Hello { slave_id } => {
                vec![b"HELLO".to_vec(), slave_id.to_string().into_bytes()]
            }
            PeerFrame::Chunk { offset, data } => vec![
                b"CHUNK".to_vec(),
                offset.to_string().into_bytes(),
                data.to_vec(),
            ],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(frames: &[&[u8]]) -> Result<PeerFrame<'static>, FileFrameError> {
        let owned: Vec<Vec<u8>> = frames.iter().map(|f| f.to_vec()).collect();
        // Leak for a 'static borrow; fine in a test.
        let leaked: &'static [Vec<u8>] = Box::leak(owned.into_boxed_slice());
        parse_peer_frames(leaked)
    }

    #[test]
    fn peer_frames() {
        assert_eq!(
            peer(&[b"HELLO", b"12"]),
            Ok(PeerFrame::Hello { slave_id: 12 })
        );
        assert_eq!(
            peer(&[b"HELLO", b"0"]),
            Ok(PeerFrame::Hello { slave_id: 0 })
        );
        assert_eq!(
            peer(&[b"HELLO", b"007", b"extra"]),
            Ok(PeerFrame::Hello { slave_id: 7 })
        );
        assert_eq!(
            peer(&[b"CHUNK", b"65536", b"\x00\xff"]),
            Ok(PeerFrame::Chunk {
                offset: 65536,
                data: b"\x00\xff"
            })
        );
        assert_eq!(
            peer(&[b"CHUNK", b"0", b""]),
            Ok(PeerFrame::Chunk {
                offset: 0,
                data: b""
            })
        );
        assert_eq!(peer(&[]), Err(FileFrameError::Empty));
        assert_eq!(
            peer(&[b"HELLO"]),
            Err(FileFrameError::MissingFrame {
                verb: "HELLO",
                frame: "slave id"
            })
        );
        assert_eq!(
            peer(&[b"CHUNK", b"0"]),
            Err(FileFrameError::MissingFrame {
                verb: "CHUNK",
                frame: "data"
            })
        );
        assert!(matches!(
            peer(&[b"CHUNK"]),
            Err(FileFrameError::MissingFrame {
                frame: "offset",
                ..
            })
        ));
        for bad in [
            &b""[..],
            b"-1",
            b"+1",
            b" 1",
            b"1_0",
            b"1a",
            b"\xd9\xa1",
            b"18446744073709551616",
        ] {
            assert!(
                matches!(
                    peer(&[b"HELLO", bad]),
                    Err(FileFrameError::BadNumber { .. })
                ),
                "{bad:?}"
            );
        }
        assert_eq!(
            peer(&[b"HELLO", b"18446744073709551615"]),
            Ok(PeerFrame::Hello { slave_id: u64::MAX })
        );
        assert_eq!(
            peer(&[b"FETCH", b"0", b"1"]),
            Err(FileFrameError::UnknownVerb(b"FETCH".to_vec()))
        );
        assert_eq!(
            peer(&[b"hello", b"1"]),
            Err(FileFrameError::UnknownVerb(b"hello".to_vec()))
        );
        let long = vec![b'X'; 100];
        assert!(matches!(peer(&[&long]), Err(FileFrameError::UnknownVerb(v)) if v.len() == 32));
    }

    #[test]
    fn master_frames() {
        let f = MasterFrame::Fetch {
            offset: 196_608,
            length: 5,
        };
        assert_eq!(
            f.to_frames(),
            vec![b"FETCH".to_vec(), b"196608".to_vec(), b"5".to_vec()]
        );
        assert_eq!(parse_master_frames(&f.to_frames()), Ok(f));
        assert_eq!(MasterFrame::Done.to_frames(), vec![b"DONE".to_vec()]);
        assert_eq!(
            parse_master_frames(&MasterFrame::Done.to_frames()),
            Ok(MasterFrame::Done)
        );
        assert_eq!(
            MasterFrame::Done.with_identity(b"id"),
            vec![b"id".to_vec(), b"DONE".to_vec()]
        );
        let bad: [&[u8]; 2] = [b"FETCH", b"0"];
        assert!(matches!(
            parse_master_frames(&bad),
            Err(FileFrameError::MissingFrame { .. })
        ));
        let bad: [&[u8]; 1] = [b"CHUNK"];
        assert!(matches!(
            parse_master_frames(&bad),
            Err(FileFrameError::UnknownVerb(_))
        ));
    }

    #[test]
    fn round_trips_and_identity() {
        let frames: Vec<Vec<u8>> = vec![
            b"\x00\x01id".to_vec(),
            b"CHUNK".to_vec(),
            b"10".to_vec(),
            b"abc".to_vec(),
        ];
        let (id, rest) = split_identity(&frames).unwrap();
        assert_eq!(id, b"\x00\x01id");
        let chunk = parse_peer_frames(rest).unwrap();
        assert_eq!(
            chunk,
            PeerFrame::Chunk {
                offset: 10,
                data: b"abc"
            }
        );
        assert_eq!(chunk.to_frames(), rest.to_vec());
        let hello = PeerFrame::Hello { slave_id: 5 };
        assert_eq!(parse_peer_frames(&hello.to_frames()), Ok(hello));
        assert!(split_identity::<Vec<u8>>(&[]).is_none());
        assert_eq!(
            FileFrameError::MissingFrame {
                verb: "CHUNK",
                frame: "data"
            }
            .to_string(),
            "CHUNK without data"
        );
        assert_eq!(
            FileFrameError::BadNumber {
                verb: "HELLO",
                frame: "slave id",
                raw: b"x\xff".to_vec()
            }
            .to_string(),
            "HELLO: invalid slave id: x\\xff"
        );
    }
}
