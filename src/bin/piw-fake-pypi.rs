//! A fake PyPI for the local demo (`scripts/demo`) and for trying a slave
//! by hand. Test support: not shipped in the Debian packages.
//!
//! ```text
//! piw-fake-pypi [--port N] [--packages SPEC ...] [--events N]
//!               [--tls-cert FILE --tls-key FILE] [--in-tree-sdists]
//! ```
//!
//! * `--port N`: listen on 127.0.0.1:N (default: any free port; printed).
//! * `--packages SPEC`: a project to publish, `name` (version 1.0) or
//!   `name==version`; may be repeated, or given as a comma-separated list,
//!   or as free arguments. Each gets a real, buildable sdist.
//! * `--events N`: N more synthetic changelog events (new projects and
//!   releases without sdists) for a bigger catch-up.
//! * `--tls-cert`/`--tls-key`: serve HTTPS with this PEM certificate chain
//!   and key instead of plain HTTP.
//! * `--in-tree-sdists`: serve sdists with an in-tree build backend that
//!   pip builds with nothing installed, build isolation or not (what
//!   piw-slave's pip flags need offline); by default they are setuptools
//!   projects, built with `--no-build-isolation` where python3-setuptools
//!   and python3-wheel are installed.
//!
//! The events are stamped an hour ago and a heartbeat is added at the end,
//! so a master's 5-minute ordering window lets them all through at once.
//! It prints the master options to use and the pip command that builds
//! from its index, then serves until interrupted.

use piwheels::fake_pypi::{Event, FakePypi, SdistKind};

fn pem_items(path: &str, tag: &str) -> Result<Vec<Vec<u8>>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?;
    let begin = format!("-----BEGIN {tag}-----");
    let end = format!("-----END {tag}-----");
    let mut out = Vec::new();
    let mut rest = text.as_str();
    while let Some(b) = rest.find(&begin) {
        let after = &rest[b + begin.len()..];
        let e = after
            .find(&end)
            .ok_or_else(|| format!("{path}: unterminated {tag}"))?;
        let b64: String = after[..e].chars().filter(|c| !c.is_whitespace()).collect();
        out.push(base64_decode(&b64).ok_or_else(|| format!("{path}: bad base64"))?);
        rest = &after[e + end.len()..];
    }
    Ok(out)
}

fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let mut acc = 0u32;
    let mut bits = 0;
    for c in s.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'=' => break,
            _ => return None,
        };
        acc = acc << 6 | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    Some(out)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = pico_args::Arguments::from_env();
    if args.contains(["-h", "--help"]) {
        println!(
            "usage: piw-fake-pypi [--port N] [--packages SPEC ...] [--events N] \
             [--tls-cert FILE --tls-key FILE] [--in-tree-sdists]\n  SPEC is name or name==version"
        );
        return Ok(());
    }
    if args.contains("--version") {
        println!("{}", piwheels::VERSION);
        return Ok(());
    }
    let in_tree = args.contains("--in-tree-sdists");
    let port: u16 = args.opt_value_from_str("--port")?.unwrap_or(0);
    let events: usize = args.opt_value_from_str("--events")?.unwrap_or(0);
    let cert: Option<String> = args.opt_value_from_str("--tls-cert")?;
    let key: Option<String> = args.opt_value_from_str("--tls-key")?;
    let mut specs: Vec<String> = args.values_from_str("--packages")?;
    specs.extend(
        args.finish()
            .into_iter()
            .map(|s| s.to_string_lossy().into_owned()),
    );
    if let Some(bad) = specs.iter().find(|s| s.starts_with('-')) {
        return Err(format!("unknown option {bad}; try --help").into());
    }
    let specs: Vec<String> = specs
        .iter()
        .flat_map(|s| s.split(','))
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect();

    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs() as i64;
    let kind = if in_tree {
        SdistKind::InTree
    } else {
        SdistKind::Setuptools
    };
    let mut builder = FakePypi::builder()
        .port(port)
        .start_time(now - 3600)
        .sdists(kind);
    if let (Some(cert), Some(key)) = (&cert, &key) {
        let chain = pem_items(cert, "CERTIFICATE")?;
        let mut keys = pem_items(key, "PRIVATE KEY")?;
        if keys.is_empty() {
            return Err(format!("{key}: no PKCS#8 PRIVATE KEY").into());
        }
        builder = builder.tls(chain, keys.remove(0))?;
    }
    let pypi = builder.start()?;

    for spec in &specs {
        let (name, version) = spec.split_once("==").unwrap_or((spec, "1.0"));
        pypi.add_release(name, version);
        pypi.set_summary(name, Some(&format!("The {name} package (fake PyPI)")));
        pypi.advance(1);
    }
    let t = pypi.now();
    pypi.add_events((0..events).map(|i| Event {
        name: format!("synthetic-{}", i / 3),
        version: (i % 3 != 0).then(|| format!("{}.0", i % 3)),
        timestamp: t + (i as i64) / 100,
        action: match i % 3 {
            0 => "create".to_owned(),
            1 => "new release".to_owned(),
            _ => format!("add py3 file synthetic_{}-2.0-py3-none-any.whl", i / 3),
        },
        serial: 0,
    }));
    let last = pypi.flush_window();

    println!("fake-pypi: serving {} (serials up to {last})", pypi.url());
    println!(
        "  piw-master --pypi-xmlrpc {} --pypi-json {} --pypi-simple {}",
        pypi.xmlrpc_url(),
        pypi.json_url(),
        pypi.simple_url()
    );
    if let Some((name, version)) = specs
        .first()
        .map(|s| s.split_once("==").unwrap_or((s, "1.0")))
    {
        let isolation = if in_tree { "" } else { " --no-build-isolation" };
        println!(
            "  python3 -m pip wheel --no-deps{isolation} \
             --index-url {} --wheel-dir /tmp/wheels {name}=={version}",
            pypi.simple_url()
        );
    }
    println!("  (Ctrl+C stops it)");
    loop {
        std::thread::park();
    }
}
