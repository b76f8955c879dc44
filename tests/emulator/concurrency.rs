//! Concurrency: eight uploads of two parts each into one repository at once, each followed by a
//! PutImage, while ListImages runs alongside. Every call succeeds and the final state holds
//! exactly the eight images, their layers (with the parts sent) and their tags.

use crate::support::{
    data, oci_manifest, push_blob, push_layer, put_manifest, Env, MIB, OCI_MANIFEST,
};
use aws_sdk_ecr::types::{ImageIdentifier, LayerAvailability};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

const UPLOADS: usize = 8;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_uploads_pushes_and_listings_agree() {
    let env = Env::start().await;
    env.repo("busy").await;
    let config = push_blob(&env.client, "busy", 1, 500).await;

    let done = Arc::new(AtomicBool::new(false));
    let lister = {
        let (c, done) = (env.client.clone(), done.clone());
        tokio::spawn(async move {
            let mut calls = 0;
            loop {
                let finished = done.load(Ordering::SeqCst);
                let out = c
                    .list_images()
                    .repository_name("busy")
                    .send()
                    .await
                    .expect("ListImages during pushes");
                assert!(out.image_ids().len() <= UPLOADS);
                calls += 1;
                if finished {
                    return calls;
                }
            }
        })
    };
    let pushes: Vec<_> = (0..UPLOADS)
        .map(|i| {
            let (c, config) = (env.client.clone(), config.clone());
            tokio::spawn(async move {
                let sizes = [5 * MIB, 1000 + 37 * i];
                let bytes = data(100 + i as u64, sizes[0] + sizes[1]);
                let layer = push_layer(&c, "busy", &bytes, &sizes).await;
                let manifest =
                    oci_manifest((&config.1, config.0.len()), &[(&layer, bytes.len())], "");
                let digest =
                    put_manifest(&c, "busy", &manifest, OCI_MANIFEST, Some(&format!("t{i}"))).await;
                (layer, sizes, bytes.len(), manifest, digest)
            })
        })
        .collect();
    let mut pushed = Vec::new();
    for p in pushes {
        pushed.push(p.await.expect("push task"));
    }
    done.store(true, Ordering::SeqCst);
    assert!(lister.await.expect("lister task") >= 1);

    let c = &env.client;
    let listed = c
        .list_images()
        .repository_name("busy")
        .send()
        .await
        .unwrap();
    let mut tags: Vec<_> = listed
        .image_ids()
        .iter()
        .map(|i| i.image_tag().unwrap().to_string())
        .collect();
    tags.sort();
    assert_eq!(
        tags,
        (0..UPLOADS).map(|i| format!("t{i}")).collect::<Vec<_>>()
    );
    for (i, (layer, sizes, len, manifest, digest)) in pushed.iter().enumerate() {
        assert_eq!(
            env.emu.layer_parts("busy", layer),
            Some(sizes.iter().map(|&s| s as u64).collect())
        );
        let out = c
            .batch_get_image()
            .repository_name("busy")
            .image_ids(
                ImageIdentifier::builder()
                    .image_tag(format!("t{i}"))
                    .build(),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(out.images()[0].image_manifest(), Some(manifest.as_str()));
        assert_eq!(
            out.images()[0].image_id().unwrap().image_digest(),
            Some(digest.as_str())
        );
        let checked = c
            .batch_check_layer_availability()
            .repository_name("busy")
            .layer_digests(layer)
            .send()
            .await
            .unwrap();
        assert_eq!(
            checked.layers()[0].layer_availability(),
            Some(&LayerAvailability::Available)
        );
        assert_eq!(checked.layers()[0].layer_size(), Some(*len as i64));
    }
    let described = c
        .describe_images()
        .repository_name("busy")
        .send()
        .await
        .unwrap();
    assert_eq!(described.image_details().len(), UPLOADS);
}
