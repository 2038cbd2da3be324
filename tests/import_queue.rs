//! The import queue of the real master binary, spoken to byte for byte as
//! piwheels' piw-import and piw-add do: REQ on the ipc import queue, a
//! DEALER with transfer id 0 on the file queue.

mod common;

use common::{MasterProcess, SimSlave};
use piwheels::master::file_juggler::hex;
use piwheels::protocol::import::AddPackage;
use piwheels::protocol::{
    BuildState, FileState, ImportReply, ImportRequest, TimeDelta, WireMessage,
};
use piwheels::testing::TestDb;
use sha2::{Digest, Sha256};

fn request(req: &zmq::Socket, msg: &ImportRequest) -> ImportReply {
    req.send(msg.encode(), 0).unwrap();
    ImportReply::decode(&req.recv_bytes(0).expect("a reply from mr_chase")).unwrap()
}

#[test]
fn piw_import_and_piw_add_over_the_import_queue() {
    let tdb = TestDb::new();
    tdb.admin()
        .batch_execute("INSERT INTO build_abis (abi_tag) VALUES ('cp311')")
        .unwrap();
    let mut db = tdb.database();
    db.add_new_package("six", "", "").unwrap();
    db.add_new_package_version("six", "1.16.0", None, "")
        .unwrap();
    drop(db);
    let master = MasterProcess::start_on(tdb, &[]);
    let ctx = zmq::Context::new();
    let req = ctx.socket(zmq::REQ).unwrap();
    req.set_rcvtimeo(20_000).unwrap();
    req.set_linger(0).unwrap();
    req.connect(&master.ipc("import")).unwrap();

    let content: Vec<u8> = (0..300_000u32).map(|i| (i % 7) as u8).collect();
    let mut h = Sha256::new();
    h.update(&content);
    let file = FileState {
        filename: "six-1.16.0-py2.py3-none-any.whl".into(),
        filesize: content.len() as u64,
        filehash: hex(&h.finalize()),
        package_tag: "six".into(),
        package_version_tag: "1.16.0".into(),
        py_version_tag: "py2.py3".into(),
        abi_tag: "none".into(),
        platform_tag: "any".into(),
        requires_python: None,
        dependencies: vec![
            ("apt".into(), vec![]),
            ("pip".into(), vec![]),
            ("".into(), vec![]),
        ],
        location: "/simple".into(),
    };
    let import = ImportRequest::Import(BuildState {
        slave_id: 0,
        package: "six".into(),
        version: "1.16.0".into(),
        abi_tag: "cp311".into(),
        status: true,
        duration: TimeDelta::ZERO,
        output: "Imported manually via piw-import".into(),
        files: vec![file.clone()],
    });
    assert_eq!(
        request(&req, &import),
        ImportReply::Send(file.filename.clone())
    );
    // The transfer goes over the file queue with id 0, as piw-import does.
    let sim = SimSlave::connect(&master);
    sim.send_file(0, &content, |_, _| {});
    assert_eq!(
        request(&req, &ImportRequest::Sent),
        ImportReply::Done("IMPORT".into())
    );
    let landed = master
        .dir
        .path()
        .join("www/simple/six")
        .join(&file.filename);
    assert_eq!(std::fs::read(landed).unwrap(), content);

    let add = ImportRequest::AddPkg(AddPackage {
        package: "New_Thing".into(),
        description: "new".into(),
        skip: String::new(),
        unskip: false,
        aliases: vec![],
    });
    assert_eq!(request(&req, &add), ImportReply::Done("NEWPKG".into()));
    let n: i64 = master
        .db
        .admin()
        .query_one(
            "SELECT count(*) FROM packages WHERE package = 'new-thing'",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(n, 1);
}
