//! Client certificates (mTLS): required ones refuse clients without one, or with one from
//! another CA; a verified one is an identity the access rules name by its CN.

use super::{curl_status, start, Pki};
use crate::support::tool_available;

#[tokio::test]
async fn required_client_certificates_refuse_clients_without_one() {
    if !tool_available("curl", "--version") {
        return;
    }
    let more = "client_ca = \"{pki}/ca.crt\"\nclient_cert_required = true\n";
    let Some(s) = start(more).await else { return };
    let (ca, url) = (s.pki.arg("ca.crt"), s.url("/v2/"));
    let (cert, key) = (s.pki.arg("client.crt"), s.pki.arg("client.key"));

    let without = curl_status(&["--cacert", &ca, &url]).await;
    assert!(
        without.starts_with("000"),
        "no client certificate got an answer: {without}"
    );
    assert_eq!(
        curl_status(&["--cacert", &ca, "--cert", &cert, "--key", &key, &url]).await,
        "200 2",
        "a certificate signed by client_ca is admitted"
    );

    let other = tempfile::tempdir().unwrap();
    let stranger = Pki::create(other.path()).expect("openssl is there");
    let (cert, key) = (stranger.arg("client.crt"), stranger.arg("client.key"));
    let foreign = curl_status(&["--cacert", &ca, "--cert", &cert, "--key", &key, &url]).await;
    assert!(
        foreign.starts_with("000"),
        "a certificate from another CA got an answer: {foreign}"
    );
}

#[tokio::test]
async fn a_client_certificate_is_an_identity_for_the_access_rules() {
    if !tool_available("curl", "--version") {
        return;
    }
    // Optional client certificates; the client's CN (`ci-builder`) may push to `team/*`.
    let more = r#"client_ca = "{pki}/ca.crt"
[auth]
anonymous_pull = ["public/*"]
[[auth.rules]]
subjects = ["ci-builder"]
repositories = ["team/*"]
actions = ["pull", "push"]
"#;
    let Some(s) = start(more).await else { return };
    let ca = s.pki.arg("ca.crt");
    let (cert, key) = (s.pki.arg("client.crt"), s.pki.arg("client.key"));
    let upload = s.url("/v2/team/app/blobs/uploads/");
    let post = ["-X", "POST", "-H", "Content-Length: 0"];

    let mut anonymous = vec!["--cacert", ca.as_str()];
    anonymous.extend_from_slice(&post);
    anonymous.push(&upload);
    assert_eq!(
        curl_status(&anonymous).await,
        "401 2",
        "without a certificate, no identity"
    );
    let mut with_cert = vec!["--cacert", &ca, "--cert", &cert, "--key", &key];
    with_cert.extend_from_slice(&post);
    with_cert.push(&upload);
    assert_eq!(
        curl_status(&with_cert).await,
        "202 2",
        "the certificate's CN may push to team/*"
    );
    let other = s.url("/v2/other/app/blobs/uploads/");
    *with_cert.last_mut().unwrap() = &other;
    assert_eq!(curl_status(&with_cert).await, "403 2", "and nowhere else");
}
