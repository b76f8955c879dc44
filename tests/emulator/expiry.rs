//! Abandoned uploads expire with their data: an upload no part reached for the configured
//! period answers UploadNotFoundException and its folder leaves the disk, while an upload that
//! keeps receiving parts lives on; uploads that expired while the emulator was down are gone
//! at start instead of being reloaded.

use crate::support::{code, initiate, part, Env};
use ecr_proxy::emulator::EmulatorTuning;
use std::time::{Duration, Instant};

fn expiring_after(secs: u64) -> EmulatorTuning {
    EmulatorTuning {
        upload_expiry: Duration::from_secs(secs),
    }
}

fn upload_dir(env: &Env, id: &str) -> std::path::PathBuf {
    env.dir.path().join("uploads").join(id)
}

#[tokio::test]
async fn idle_uploads_expire_with_their_data_and_active_ones_live() {
    let env = Env::start_tuned(expiring_after(2)).await;
    let c = &env.client;
    env.repo("app").await;
    let idle = initiate(c, "app").await;
    part(c, "app", &idle, 0, &[7u8; 1024]).await.unwrap();
    assert!(upload_dir(&env, &idle).join("data").exists());
    let active = initiate(c, "app").await;
    let started = Instant::now();
    let mut sent = 0;
    // Keep `active` busy (a part every 250 ms) until `idle` has gone and 3 s have passed.
    while upload_dir(&env, &idle).exists() || started.elapsed() < Duration::from_secs(3) {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the idle upload was not expired within 30 s (expiry 2 s)"
        );
        part(c, "app", &active, sent, &[1u8])
            .await
            .expect("an active upload lives");
        sent += 1;
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let err = part(c, "app", &idle, 1024, &[7u8; 10]).await.unwrap_err();
    assert_eq!(code(&err).as_deref(), Some("UploadNotFoundException"));
    assert!(upload_dir(&env, &active).join("data").exists());
    assert_eq!(env.emu.upload_count(), 1, "only the active upload is left");
}

#[tokio::test]
async fn uploads_that_expired_while_stopped_are_gone_at_start() {
    let env = Env::start().await;
    env.repo("app").await;
    let id = initiate(&env.client, "app").await;
    part(&env.client, "app", &id, 0, &[7u8; 4096])
        .await
        .unwrap();
    let env = env.restart().await;
    assert_eq!(
        env.emu.upload_count(),
        1,
        "a day's expiry keeps it over a restart"
    );
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let env = env.restart_tuned(|_| {}, expiring_after(1)).await;
    assert_eq!(
        env.emu.upload_count(),
        0,
        "expired before anything was served"
    );
    assert!(!upload_dir(&env, &id).exists(), "its folder is gone");
    let err = part(&env.client, "app", &id, 4096, &[7u8; 10])
        .await
        .unwrap_err();
    assert_eq!(code(&err).as_deref(), Some("UploadNotFoundException"));
}
