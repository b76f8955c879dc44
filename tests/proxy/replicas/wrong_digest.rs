//! Issue 13, acceptance: a chunked upload whose requests go to different replicas and whose PUT
//! names a digest the bytes do not have is answered 400 DIGEST_INVALID (ECR's verdict at
//! CompleteLayerUpload), and leaves nothing: the upload is unknown and neither digest is a
//! layer on any replica or in ECR. The client's next upload of the same bytes, with the right
//! digest, succeeds.

use super::client::{answered, chunks_across, put, text};
use super::cluster::Cluster;
use super::verify::assert_blobs_in_ecr;
use crate::support::*;

const REPO: &str = "replicas/wrong";

/// The upload at `location` and the blobs `digests` are unknown on every replica, and ECR
/// has no layer `digests`.
async fn assert_nothing_left(c: &Cluster, location: &str, digests: &[&str]) {
    for (i, base) in c.urls().iter().enumerate() {
        let r = answered("GET", &format!("{base}{location}"), &[], vec![]).await;
        assert_eq!(
            (r.status, r.error_code().as_str()),
            (404, "BLOB_UPLOAD_UNKNOWN"),
            "upload status on replica {i}: {}",
            text(&r)
        );
        for d in digests {
            let url = format!("{base}/v2/{REPO}/blobs/{d}");
            let r = answered("HEAD", &url, &[], vec![]).await;
            assert_eq!(r.status, 404, "HEAD {d} on replica {i}");
        }
    }
    let check = c
        .ecr
        .batch_check_layer_availability()
        .repository_name(REPO)
        .set_layer_digests(Some(digests.iter().map(|d| d.to_string()).collect()))
        .send()
        .await
        .expect("BatchCheckLayerAvailability");
    let available: Vec<_> = check
        .layers()
        .iter()
        .filter(|l| l.layer_availability().map(|a| a.as_str()) == Some("AVAILABLE"))
        .collect();
    assert!(available.is_empty(), "layers left in ECR: {available:?}");
    assert_eq!(
        check.failures().len() + check.layers().len(),
        digests.len(),
        "{check:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_digest_on_an_upload_spread_over_replicas_is_refused_and_leaves_no_layer() {
    let Some(c) = Cluster::start(3, false).await else {
        return;
    };
    let bases = c.urls();
    // 13 MiB in 3 MiB chunks: one whole part reaches ECR before the PUT, the rest is the tail.
    let bytes = data(31, 13 * MIB);
    let right = digest(&bytes);
    let wrong = digest(b"not these bytes");

    let (location, next) = chunks_across(&bases, REPO, &bytes, 3 * MIB).await;
    let r = put(&bases[next], &location, &wrong, &[])
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (400, "DIGEST_INVALID"),
        "PUT with a wrong digest on replica {next}: {}",
        text(&r)
    );
    assert_nothing_left(&c, &location, &[&right, &wrong]).await;

    // The last bytes in the PUT itself: refused the same way.
    let (head, last) = bytes.split_at(12 * MIB);
    let (location, next) = chunks_across(&bases, REPO, head, 4 * MIB).await;
    let r = put(&bases[next], &location, &wrong, last)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (400, "DIGEST_INVALID"),
        "PUT of the last MiB with a wrong digest on replica {next}: {}",
        text(&r)
    );
    assert_nothing_left(&c, &location, &[&right, &wrong]).await;

    // The same bytes with the right digest, spread the same way: the layer, exactly.
    let (location, next) = chunks_across(&bases, REPO, &bytes, 3 * MIB).await;
    let r = put(&bases[next], &location, &right, &[])
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(r.status, 201, "PUT with the right digest: {}", text(&r));
    assert_eq!(r.header("docker-content-digest"), right);
    for (i, base) in bases.iter().enumerate() {
        let r = answered(
            "HEAD",
            &format!("{base}/v2/{REPO}/blobs/{right}"),
            &[],
            vec![],
        )
        .await;
        assert_eq!(r.status, 200, "HEAD of the layer on replica {i}");
        assert_eq!(r.header("content-length"), bytes.len().to_string());
    }
    assert_blobs_in_ecr(&c.ecr, &c.emu, &bases[1], REPO, &[bytes]).await;
}
