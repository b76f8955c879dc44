//! Issue 13, acceptance: `kill -9` of a replica process while skopeo pushes a 64 MiB layer
//! through it (behind haproxy in round-robin, three replicas sharing one Redis): the same
//! push, retried through the balancer, succeeds, and the image is in ECR byte for byte.
//! ECR answers each part 200 ms late, so the layer is still streaming when the replica dies.

use super::client::{received_bytes, BOUND};
use super::processes::ProcessCluster;
use super::verify::{assert_image, describe, skopeo_push, Image};
use crate::support::*;
use std::time::Duration;

const REPO: &str = "replicas/killed";
const TAG: &str = "v1";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_killed_mid_push_and_the_retry_through_the_balancer_succeeds() {
    if !tool_available("skopeo", "--version") {
        return;
    }
    let Some(mut c) = ProcessCluster::start(3, "UploadLayerPart:latency=200ms").await else {
        return;
    };
    let layout = c.dir().join("layout");
    let home = c.dir().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let image = Image::write(&layout, TAG, &[(4001, MIB + 3), (4002, 64 * MIB)]);
    let dest = format!("{}/{REPO}:{TAG}", c.lb_host());

    let first = {
        let (home, layout, dest) = (home.clone(), layout.clone(), dest.clone());
        tokio::spawn(async move { skopeo_push(&home, &layout, TAG, &dest).await })
    };
    // The replica streaming the large layer: the first to have received more than all the
    // small blobs together, once ECR has seen a part.
    let urls: Vec<String> = c.replicas.iter().map(|r| r.url()).collect();
    let mut victim = None;
    for _ in 0..BOUND.as_millis() / 10 {
        if first.is_finished() {
            let out = first.await.unwrap();
            panic!(
                "skopeo ended before a replica could be killed mid-push: {}\n{}",
                describe(&out),
                c.logs()
            );
        }
        if c.emu.calls("UploadLayerPart") > 0 {
            for (i, url) in urls.iter().enumerate() {
                if received_bytes(url).await >= (12 * MIB) as f64 {
                    victim = Some(i);
                }
            }
        }
        if victim.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let victim = victim.expect("no replica received the large layer");
    c.replicas[victim].kill9();
    let first = first.await.unwrap();
    assert!(
        !first.status.success(),
        "the push went on although replica {victim}, which received its large layer, was killed"
    );

    let retry = skopeo_push(&home, &layout, TAG, &dest).await;
    assert!(
        retry.status.success(),
        "the retry through the balancer after replica {victim} was killed: {}\n\
         the first push: {}\n{}",
        describe(&retry),
        describe(&first),
        c.logs()
    );
    assert_image(&c.ecr, &c.emu, REPO, TAG, &image).await;
}
