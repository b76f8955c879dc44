//! Tests of the served pair: a rotation written in two steps, and the start errors.

use super::*;
use crate::watch::CHECK_EVERY;
use std::time::Duration;

/// A self-signed certificate for `localhost` and its key, as PEM.
fn pem_pair() -> (String, String) {
    let key = rcgen::KeyPair::generate().unwrap();
    let params = rcgen::CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    let cert = params.self_signed(&key).unwrap();
    (cert.pem(), key.serialize_pem())
}

fn served_cert(r: &Resolver) -> Vec<u8> {
    r.current().end_entity_cert().unwrap().to_vec()
}

fn der(pem: &str) -> Vec<u8> {
    parse_certs(pem.as_bytes()).unwrap()[0].to_vec()
}

fn after_a_check() {
    std::thread::sleep(CHECK_EVERY + Duration::from_millis(100));
}

#[test]
fn a_replaced_pair_is_served_and_a_half_replaced_one_is_not() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("tls.crt"), dir.path().join("tls.key"));
    let (a_cert, a_key) = pem_pair();
    let (b_cert, b_key) = pem_pair();
    std::fs::write(&cert, &a_cert).unwrap();
    std::fs::write(&key, &a_key).unwrap();
    let r = Resolver::load(&cert, &key).unwrap();
    assert_eq!(served_cert(&r), der(&a_cert));

    std::fs::write(&cert, &b_cert).unwrap();
    after_a_check();
    assert_eq!(
        served_cert(&r),
        der(&a_cert),
        "a new certificate with the old key keeps the old pair"
    );
    std::fs::write(&key, &b_key).unwrap();
    after_a_check();
    assert_eq!(
        served_cert(&r),
        der(&b_cert),
        "the new pair once both are written"
    );

    std::fs::write(&key, "garbage").unwrap();
    after_a_check();
    assert_eq!(
        served_cert(&r),
        der(&b_cert),
        "an unreadable key keeps the pair"
    );
}

#[test]
fn start_errors_name_the_file_and_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("tls.crt"), dir.path().join("tls.key"));
    let (a_cert, a_key) = pem_pair();
    let (_, b_key) = pem_pair();
    let err = |c: &Path, k: &Path| Resolver::load(c, k).err().unwrap().to_string();

    let e = err(&cert, &key);
    assert!(
        e.contains("TLS certificate (tls.cert)") && e.contains("tls.crt"),
        "{e}"
    );

    std::fs::write(&cert, &a_key).unwrap();
    std::fs::write(&key, &a_key).unwrap();
    let e = err(&cert, &key);
    assert!(e.contains("no certificate in it"), "{e}");

    std::fs::write(&cert, &a_cert).unwrap();
    std::fs::write(&key, &a_cert).unwrap();
    let e = err(&cert, &key);
    assert!(
        e.contains("tls.key") && e.contains("no private key in it"),
        "{e}"
    );

    std::fs::write(&key, &b_key).unwrap();
    let e = err(&cert, &key);
    assert!(e.contains("does not match the certificate"), "{e}");

    std::fs::write(&key, &a_key).unwrap();
    assert!(Resolver::load(&cert, &key).is_ok());
}
