//! HTTPS to a PyPI mirror whose certificate comes from a private CA: the
//! client trusts what SSL_CERT_FILE names (the system trust store is read
//! the same way), and refuses a server its trust store does not vouch for.
//!
//! One test in its own binary: it sets SSL_CERT_FILE, which the client
//! reads when it is created.

use std::time::{Duration, Instant};

use piwheels::fake_pypi::FakePypi;
use piwheels::pypi::client::{ClientConfig, FetchError, PypiClient, Reply};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};

struct Ca {
    pem: String,
    issuer: Issuer<'static, KeyPair>,
}

fn ca(name: &str) -> Ca {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    let cert = params.self_signed(&key).unwrap();
    Ca {
        pem: cert.pem(),
        issuer: Issuer::new(params, key),
    }
}

fn changelog(url: &str) -> Result<usize, FetchError> {
    let mut c = ClientConfig::new(url, url);
    c.timeout = Duration::from_secs(5);
    let mut client = PypiClient::new(c, &zmq::Context::new()).unwrap();
    assert!(client.fetch_changelog(0));
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(!left.is_zero(), "no reply");
        let mut items = [client.poll_item()];
        zmq::poll(&mut items, left.as_millis() as i64).unwrap();
        for reply in client.on_ready() {
            if let Reply::Changelog { result, .. } = reply {
                client.shutdown();
                return result.map(|v| v.len());
            }
        }
    }
}

#[test]
fn a_private_ca_through_ssl_cert_file() {
    let site = ca("piwheels test site CA");
    let other = ca("some other CA");
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["localhost".to_owned()])
        .unwrap()
        .signed_by(&key, &site.issuer)
        .unwrap();
    let fake = FakePypi::start_tls(vec![cert.der().to_vec()], key.serialize_der());
    assert!(fake.xmlrpc_url().starts_with("https://localhost:"));
    fake.add_release("secure", "1.0");

    let dir = std::env::temp_dir().join(format!("piw-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let good = dir.join("site-ca.pem");
    let bad = dir.join("other-ca.pem");
    std::fs::write(&good, &site.pem).unwrap();
    std::fs::write(&bad, &other.pem).unwrap();

    // SAFETY: this binary's only test; nothing else reads the environment
    // concurrently.
    unsafe { std::env::set_var("SSL_CERT_FILE", &bad) };
    let err = changelog(&fake.xmlrpc_url()).unwrap_err();
    assert!(matches!(err, FetchError::Transport(_)), "{err:?}");
    assert!(
        err.to_string().to_lowercase().contains("certificate"),
        "{err}"
    );
    assert_eq!(
        fake.changelog_calls(),
        0,
        "no request may pass an untrusted handshake"
    );

    unsafe { std::env::set_var("SSL_CERT_FILE", &good) };
    assert_eq!(changelog(&fake.xmlrpc_url()), Ok(3));
    assert_eq!(fake.changelog_calls(), 1);

    // The scheme given is the scheme used: plain http to a TLS port fails
    // rather than being upgraded.
    let plain = fake.xmlrpc_url().replacen("https://", "http://", 1);
    assert!(changelog(&plain).is_err());
    let _ = std::fs::remove_dir_all(&dir);
}
