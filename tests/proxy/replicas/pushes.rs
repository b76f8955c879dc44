//! Issue 13, acceptance: real clients push through haproxy in round-robin in front of three
//! replicas that share one Redis, so the POST, PATCH and PUT of one blob land on different
//! replicas. 20 skopeo pushes (three at a time, every image multi-layer, five of them with a
//! 64 MiB layer) and a docker push alongside; then every manifest and every blob is checked in
//! ECR byte for byte, with the part sizes ECR received.

use super::client::received_bytes;
use super::cluster::Cluster;
use super::docker_image::DockerImage;
use super::verify::{assert_image, describe, skopeo_push, Image};
use crate::support::*;
use futures_util::StreamExt;

const IMAGES: usize = 20;
/// skopeo pushes at a time (a docker push runs beside them).
const LANES: usize = 3;

/// Image `i`'s repository and tag.
fn name(i: usize) -> (String, String) {
    (format!("replicas/app{}", i % 4), format!("v{i}"))
}

/// Image `i`'s layers (`data` seed and length): two small ones; a 64 MiB one for every fourth
/// image (five of the twenty); one just over a part for every fifth.
fn layers(i: usize) -> Vec<(u64, usize)> {
    let seed = 1000 + 10 * i as u64;
    let mut layers = vec![(seed, 300 * 1024 + 37 * i), (seed + 1, 2 * MIB + 4099 * i)];
    if i.is_multiple_of(4) {
        layers.push((seed + 2, 64 * MIB));
    }
    if i % 5 == 3 {
        layers.push((seed + 3, 10 * MIB + 1));
    }
    layers
}

/// Write image `i` as an OCI layout and copy it with skopeo to `host`; the image, once pushed.
async fn push(i: usize, host: String) -> Image {
    let dir = tempfile::tempdir().expect("temporary directory");
    let layout = dir.path().join("layout");
    let (repo, tag) = name(i);
    let image = {
        let (layout, tag) = (layout.clone(), tag.clone());
        tokio::task::spawn_blocking(move || Image::write(&layout, &tag, &layers(i)))
            .await
            .unwrap()
    };
    let out = skopeo_push(dir.path(), &layout, &tag, &format!("{host}/{repo}:{tag}")).await;
    assert!(
        out.status.success(),
        "skopeo push of image {i} ({repo}:{tag}) through the balancer: {}",
        describe(&out)
    );
    image
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_skopeo_pushes_and_a_docker_push_through_the_balancer_land_byte_for_byte() {
    let tools = tool_available("skopeo", "--version") & tool_available("docker", "version");
    let Some(c) = Cluster::start(3, true).await else {
        return;
    };
    if !tools {
        return;
    }
    assert!((0..IMAGES).filter(|&i| layers(i).len() >= 3).count() >= 5);
    let host = c.lb_host();

    let skopeo = futures_util::stream::iter(0..IMAGES)
        .map(|i| push(i, host.clone()))
        .buffered(LANES)
        .collect::<Vec<Image>>();
    let tag = format!("t{}", std::process::id());
    let docker = async {
        let image = DockerImage::build(&host, "replicas/docker", &tag).await;
        let pushed = image.push().await;
        (image, pushed)
    };
    let (images, (docker_image, pushed)) = tokio::join!(skopeo, docker);

    for (i, image) in images.iter().enumerate() {
        let (repo, tag) = name(i);
        assert_image(&c.ecr, &c.emu, &repo, &tag, image).await;
    }
    docker_image.assert_in_ecr(&c.ecr, &c.emu, &pushed).await;

    // The pushes were spread: every replica received blob bytes.
    for (i, url) in c.urls().iter().enumerate() {
        let received = received_bytes(url).await;
        assert!(received > 0.0, "replica {i} received no blob bytes");
    }
}
