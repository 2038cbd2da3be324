//! The file-transfer state machine fed arbitrary frame sequences: the
//! sans-IO `Transfer` on its own (its invariants checked after every step)
//! and the `FileJuggler` on a real temp directory (nothing may be written
//! outside its output directory; its state stays bounded).
#![no_main]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use piwheels::master::file_juggler::FileJuggler;
use piwheels::master::file_juggler::transfer::{ChunkOutcome, Transfer};
use piwheels::protocol::file::{CHUNK_SIZE, PIPELINE_SIZE};
use piwheels::protocol::{FileState, MasterFrame};
use piwheels::wheel::hex;
use sha2::{Digest, Sha256};

/// Largest file the juggler is asked to expect (files are sparse anyway).
const MAX_SIZE: u64 = 4 * CHUNK_SIZE + 7;

/// Wheel names the juggler accepts (an arbitrary string almost never is
/// one, and then nothing past EXPECT would run).
const NAMES: &[&str] = &[
    "foo-1.0-cp311-cp311-linux_armv7l.whl",
    "foo-1.0-py3-none-any.whl",
    "Foo_Bar-2.0-1-cp39-abi3-linux_aarch64.whl",
];

/// Package directories for VERIFY, good and hostile.
const PACKAGES: &[&str] = &["foo", "foo-bar", ".", "..", "../out", "simple", ""];

#[derive(Debug, Arbitrary)]
enum Name {
    Known(u8),
    Any(String),
}

impl Name {
    fn get<'a>(&'a self, known: &[&'static str]) -> &'a str {
        match self {
            Name::Known(i) => known[*i as usize % known.len()],
            Name::Any(s) => s,
        }
    }
}

#[derive(Debug, Arbitrary)]
enum Op {
    /// EXPECT a file; `honest` makes the hash match `content` so VERIFY
    /// can succeed and a file really lands in the output.
    Expect {
        slave: u8,
        filename: Name,
        size: u32,
        content: Vec<u8>,
        honest: bool,
    },
    /// Raw frames from a peer (any verb, any content).
    Frames {
        peer: u8,
        frames: Vec<Vec<u8>>,
    },
    /// HELLO from a peer.
    Hello {
        peer: u8,
        slave: u8,
    },
    /// A CHUNK answering the juggler's last FETCH to that peer (or not).
    Answer {
        peer: u8,
        fill: u8,
        skew: i8,
    },
    Verify {
        slave: u8,
        package: Name,
    },
    Abandon {
        slave: u8,
    },
    Clear,
}

#[derive(Debug, Arbitrary)]
enum TransferOp {
    Fetch,
    Chunk {
        offset: u64,
        len: u64,
    },
    /// Answer the n-th outstanding FETCH exactly.
    Answer(u8),
    Hello,
}

#[derive(Debug, Arbitrary)]
struct Input {
    size: u64,
    transfer_ops: Vec<TransferOp>,
    ops: Vec<Op>,
}

fn fuzz_transfer(size: u64, ops: &[TransferOp]) {
    let mut t = Transfer::new(size);
    let mut outstanding: Vec<(u64, u64)> = Vec::new();
    for op in ops {
        match *op {
            TransferOp::Fetch => {
                while let Some((o, l)) = t.next_fetch() {
                    assert!(l > 0 && l <= CHUNK_SIZE, "FETCH length {l}");
                    assert!(
                        o.checked_add(l).is_some_and(|e| e <= size),
                        "FETCH past the end"
                    );
                    assert!(
                        !outstanding.iter().any(|&(a, b)| o < a + b && a < o + l),
                        "FETCH overlaps one in flight"
                    );
                    outstanding.push((o, l));
                    assert!(
                        outstanding.len() as u64 <= PIPELINE_SIZE,
                        "pipeline overflow"
                    );
                }
            }
            TransferOp::Chunk { offset, len } => {
                let before = t.received();
                let out = t.on_chunk(offset, len);
                if out == ChunkOutcome::Unexpected {
                    assert_eq!(t.received(), before);
                } else {
                    outstanding.retain(|&r| r != (offset, len));
                }
            }
            TransferOp::Answer(n) => {
                if outstanding.is_empty() {
                    continue;
                }
                let (o, l) = outstanding.remove(n as usize % outstanding.len());
                let before = t.received();
                let out = t.on_chunk(o, l);
                assert_ne!(out, ChunkOutcome::Unexpected, "an exact answer was refused");
                assert_eq!(t.received(), before + l);
                assert_eq!(out == ChunkOutcome::Complete, t.is_complete());
            }
            TransferOp::Hello => {
                t.on_hello();
                outstanding.clear();
            }
        }
        assert!(t.received() <= size);
        assert_eq!(t.is_complete(), t.received() == size);
    }
}

/// One directory for the whole run: `root/out` is the juggler's output,
/// `root` must never hold anything else.
fn root() -> &'static Path {
    static ROOT: OnceLock<PathBuf> = OnceLock::new();
    ROOT.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("piw-fuzz-juggler-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("out")).expect("temp dir");
        dir
    })
}

/// Checks that everything under `dir` really lies under `out` (no symlink
/// leading out, except the armv6l twins which point at a sibling name).
fn check_tree(dir: &Path, out: &Path, files: &mut usize) {
    for entry in std::fs::read_dir(dir).expect("read_dir") {
        let entry = entry.expect("entry");
        let path = entry.path();
        let meta = std::fs::symlink_metadata(&path).expect("metadata");
        *files += 1;
        if meta.file_type().is_symlink() {
            let target = std::fs::read_link(&path).expect("read_link");
            assert!(
                target.components().count() == 1 && !target.to_string_lossy().starts_with('.'),
                "symlink {path:?} -> {target:?} may leave the output"
            );
        } else if meta.is_dir() {
            check_tree(&path, out, files);
        }
        let canon = std::fs::canonicalize(&path).unwrap_or(path.clone());
        assert!(canon.starts_with(out), "{canon:?} is outside {out:?}");
    }
}

fn empty_dir(dir: &Path) {
    for entry in std::fs::read_dir(dir).expect("read_dir").flatten() {
        let p = entry.path();
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            std::fs::remove_dir_all(&p).expect("clean up");
        } else {
            std::fs::remove_file(&p).expect("clean up");
        }
    }
}

fn file_state(filename: &str, size: u64, hash: String) -> FileState {
    FileState {
        filename: filename.to_owned(),
        filesize: size,
        filehash: hash,
        package_tag: "foo".into(),
        package_version_tag: "1.0".into(),
        py_version_tag: "cp311".into(),
        abi_tag: "cp311".into(),
        platform_tag: "linux_armv7l".into(),
        requires_python: None,
        dependencies: vec![],
        location: "/simple".into(),
    }
}

fuzz_target!(|input: Input| {
    fuzz_transfer(input.size % (64 * CHUNK_SIZE), &input.transfer_ops);

    let root = root();
    let out = std::fs::canonicalize(root.join("out")).expect("out");
    let mut fj = FileJuggler::new(&out).expect("juggler");
    let mut expects = 0usize;
    let mut last_fetch: [Option<(u64, u64)>; 4] = [None; 4];
    let mut contents: std::collections::HashMap<u8, Vec<u8>> = Default::default();
    let mut peer_slave = [0u8; 4];
    for op in input.ops.iter().take(64) {
        let to_peer;
        let replies = match op {
            Op::Expect {
                slave,
                filename,
                size,
                content,
                honest,
            } => {
                let slave = slave % 4;
                let (size, hash) = if *honest {
                    let mut c = content.clone();
                    c.truncate(MAX_SIZE as usize);
                    let h = hex(&Sha256::digest(&c));
                    let n = c.len() as u64;
                    contents.insert(slave, c);
                    (n, h)
                } else {
                    (u64::from(*size) % MAX_SIZE, "0".repeat(64))
                };
                if fj
                    .expect(
                        u64::from(slave),
                        &file_state(filename.get(NAMES), size, hash),
                    )
                    .is_ok()
                {
                    expects += 1;
                }
                continue;
            }
            Op::Frames { peer, frames } => {
                to_peer = peer % 4;
                let frames: Vec<Vec<u8>> = frames.iter().take(4).cloned().collect();
                fj.on_frames(&[peer % 4], &frames)
            }
            Op::Hello { peer, slave } => {
                to_peer = peer % 4;
                peer_slave[to_peer as usize] = slave % 4;
                fj.on_frames(
                    &[peer % 4],
                    &[b"HELLO".to_vec(), (slave % 4).to_string().into_bytes()],
                )
            }
            Op::Answer { peer, fill, skew } => {
                let peer = peer % 4;
                to_peer = peer;
                let Some((o, l)) = last_fetch[peer as usize] else {
                    continue;
                };
                let o = o.saturating_add_signed(i64::from(*skew));
                // Real bytes when we know the file, else a filler.
                let data = contents
                    .get(&peer_slave[peer as usize])
                    .and_then(|c| c.get(o as usize..(o + l) as usize))
                    .map(<[u8]>::to_vec)
                    .unwrap_or_else(|| vec![*fill; l as usize]);
                fj.on_frames(
                    &[peer],
                    &[b"CHUNK".to_vec(), o.to_string().into_bytes(), data],
                )
            }
            Op::Verify { slave, package } => {
                let _ = fj.verify(u64::from(slave % 4), package.get(PACKAGES));
                continue;
            }
            Op::Abandon { slave } => {
                fj.abandon(u64::from(slave % 4));
                continue;
            }
            Op::Clear => {
                fj.clear();
                continue;
            }
        };
        for r in replies {
            if let MasterFrame::Fetch { offset, length } = r {
                assert!(length <= CHUNK_SIZE && offset + length <= MAX_SIZE);
                // Remembered for Answer.
                last_fetch[to_peer as usize] = Some((offset, length));
            }
        }
        assert!(
            fj.transfers() <= expects.min(4),
            "{} transfers",
            fj.transfers()
        );
    }
    drop(fj);
    // Nothing beside `out` in the root, nothing escaping `out`.
    let names: Vec<_> = std::fs::read_dir(root)
        .expect("root")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(
        names,
        vec![std::ffi::OsString::from("out")],
        "wrote outside the output"
    );
    let mut files = 0;
    check_tree(&out, &out, &mut files);
    // Dropping the juggler removes its temp files, and VERIFY refuses
    // package directories with a leading dot: nothing hidden is left.
    let simple = out.join("simple");
    for e in std::fs::read_dir(&simple).expect("simple").flatten() {
        assert!(
            !e.file_name().to_string_lossy().starts_with('.'),
            "left {:?} behind",
            e.file_name()
        );
    }
    empty_dir(&out);
});
