//! Tests of the session table: ids, repository binding, expiry of busy and idle sessions, the
//! per-client cap, and parking idle tails so they hold no memory.

use super::*;
use std::net::Ipv4Addr;

fn table(idle: Duration, max_per_client: usize) -> Sessions {
    Sessions::new(
        64 << 20,
        idle,
        max_per_client,
        Spool::create(None, 1 << 30).expect("spool"),
    )
}

#[tokio::test]
async fn idle_sessions_expire_busy_or_not_and_busy_ones_are_told() {
    let s = table(Duration::from_millis(20), 10);
    let idle = s.create("a/b", "u1".into(), 5 << 20, None);
    let busy = s.create("a/b", "u2".into(), 5 << 20, None);
    assert_ne!(idle.id(), busy.id());
    assert_eq!(idle.id().len(), 64, "ids carry 2 x 122 random bits");
    let _held = busy.state.clone().lock_owned().await;
    tokio::time::sleep(Duration::from_millis(30)).await;
    busy.touch();
    assert_eq!(s.expire(), 1);
    assert!(s.get("a/b", idle.id()).is_none());
    assert!(idle.is_cancelled(), "a request using it stops");
    assert!(
        s.get("a/b", busy.id()).is_some(),
        "a live body counts as activity"
    );
}

#[tokio::test]
async fn a_session_is_found_only_under_its_repository() {
    let s = table(Duration::from_secs(60), 10);
    let id = s.create("a/b", "u".into(), 5 << 20, None).id().to_string();
    assert!(s.get("a/b", &id).is_some());
    assert!(s.get("a/c", &id).is_none());
    assert!(s.get("a/b", "guess").is_none());
}

#[tokio::test]
async fn each_client_address_has_its_own_cap() {
    let s = table(Duration::from_secs(60), 2);
    let a = Some(IpAddr::from(Ipv4Addr::new(127, 0, 0, 2)));
    let b = Some(IpAddr::from(Ipv4Addr::new(127, 0, 0, 3)));
    let first = s.create("a/b", "u1".into(), 5 << 20, a);
    s.create("a/b", "u2".into(), 5 << 20, a);
    let refused = s.admit(a).expect_err("a third upload from one address");
    assert_eq!(refused.open, 2);
    s.admit(b).expect("another address is not affected");
    s.admit(None)
        .expect("the proxy's own uploads are not capped");
    s.remove(first.id());
    s.remove(first.id());
    s.admit(a).expect("a finished upload frees its slot, once");
    s.create("a/b", "u3".into(), 5 << 20, a);
    assert!(s.admit(a).is_err());
}
