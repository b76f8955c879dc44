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
    let idle = s.create("a/b", "u1".into(), 5 << 20, s.admit(None).unwrap());
    let busy = s.create("a/b", "u2".into(), 5 << 20, s.admit(None).unwrap());
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
    let id = s
        .create("a/b", "u".into(), 5 << 20, s.admit(None).unwrap())
        .id()
        .to_string();
    assert!(s.get("a/b", &id).is_some());
    assert!(s.get("a/c", &id).is_none());
    assert!(s.get("a/b", "guess").is_none());
}

#[tokio::test]
async fn each_client_address_has_its_own_cap() {
    let s = table(Duration::from_secs(60), 2);
    let a = Some(IpAddr::from(Ipv4Addr::new(127, 0, 0, 2)));
    let b = Some(IpAddr::from(Ipv4Addr::new(127, 0, 0, 3)));
    let first = s.create(
        "a/b",
        "u1".into(),
        5 << 20,
        s.admit(a.map(Into::into)).unwrap(),
    );
    let second_slot = s.admit(a.map(Into::into)).expect("a second upload");
    let refused = s
        .admit(a.map(Into::into))
        .expect_err("a third upload from one address");
    assert_eq!(
        refused.open, 2,
        "a slot is counted as it is taken, before the upload starts"
    );
    drop(second_slot);
    let kept = s
        .admit(a.map(Into::into))
        .expect("an upload that never started gives its slot back");
    s.admit(b.map(Into::into))
        .expect("another address is not affected");
    s.admit(None)
        .expect("the proxy's own uploads are not capped");
    s.remove(first.id());
    s.remove(first.id());
    drop(first);
    let third = s
        .admit(a.map(Into::into))
        .expect("a finished upload frees its slot, once");
    assert!(s.admit(a.map(Into::into)).is_err());
    drop((kept, third));
}

#[tokio::test]
async fn an_ipv6_client_is_counted_by_its_slash_64() {
    let s = table(Duration::from_secs(60), 1);
    let one: IpAddr = "2001:db8:1:2::1".parse().unwrap();
    let same_64: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
    let other_64: IpAddr = "2001:db8:1:3::1".parse().unwrap();
    let _held = s.admit(Some(one.into())).unwrap();
    assert!(s.admit(Some(same_64.into())).is_err());
    s.admit(Some(other_64.into())).expect("another /64");
    let mapped: IpAddr = "::ffff:127.0.0.9".parse().unwrap();
    let _v4 = s.admit(Some(mapped.into())).unwrap();
    assert!(
        s.admit(Some("127.0.0.9".parse::<IpAddr>().unwrap().into()))
            .is_err(),
        "a mapped IPv4 is that IPv4"
    );
}

// ---- Cancel-safety of parking and restoring a tail (a request future dropped mid-way,
// e.g. an HTTP/2 RST_STREAM or a closed connection, while it awaits the spool). ----

use super::writer::{Tail, Writer, WriterCtx};
use bytes::Bytes;

async fn review_ctx(s: &Sessions) -> WriterCtx {
    let upstream = crate::ecr::Upstream {
        region: Some("us-east-1".into()),
        endpoint_url: Some("http://127.0.0.1:9".into()),
        static_credentials: Some(("AKIDEXAMPLE".into(), "secret".into())),
        registry_id: None,
    };
    WriterCtx {
        ecr: crate::ecr::Ecr::connect(&upstream).await,
        budget: s.budget.clone(),
        spool: s.spool.clone(),
        budget_wait: Duration::from_secs(1),
    }
}

/// Raw bytes the tail holds, whichever form it is in.
fn tail_raw(state: &session::State) -> u64 {
    match &state.tail {
        Tail::Empty => 0,
        Tail::Filling(body, _) => body.raw_len(),
        Tail::Parked(parked, _) => parked.raw_len(),
    }
}

#[tokio::test]
async fn a_request_dropped_while_a_parked_tail_comes_back_leaves_the_upload_consistent() {
    let s = table(Duration::from_secs(60), 10);
    let ctx = review_ctx(&s).await;
    let session = s.create("a/b", "u".into(), 5 << 20, s.admit(None).unwrap());
    let mut w = Writer::lock(session.clone(), ctx.clone()).await;
    w.write(Bytes::from(vec![7u8; 1000])).await.unwrap();
    w.park().unwrap();
    drop(w);
    {
        let st = session.state.lock().await;
        assert!(matches!(st.tail, Tail::Parked(..)));
        assert_eq!(tail_raw(&st), 1000);
    }
    // The next request brings the tail back, and is dropped while the spool file is read.
    let mut w = Writer::lock(session.clone(), ctx.clone()).await;
    // Whether it is dropped before or after the load, the upload must stay consistent.
    tokio::select! {
        biased;
        _ = w.write(Bytes::from_static(b"x")) => {},
        () = std::future::ready(()) => {},
    };
    drop(w);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let st = session.state.lock().await;
    assert_eq!(
        st.committed + tail_raw(&st),
        st.received,
        "received ({}) must be what ECR holds ({}) plus the tail ({}): the parked bytes were lost \
         but Range still claims them, so the next part is sent without them",
        st.received,
        st.committed,
        tail_raw(&st)
    );
}

#[tokio::test]
async fn parking_is_done_in_place_and_a_dropped_session_leaves_no_file() {
    let s = table(Duration::from_secs(60), 10);
    let ctx = review_ctx(&s).await;
    let session = s.create("a/b", "u".into(), 5 << 20, s.admit(None).unwrap());
    let mut w = Writer::lock(session.clone(), ctx.clone()).await;
    w.write(Bytes::from(vec![7u8; 1 << 20])).await.unwrap();
    // `park` has no await: a request cannot be dropped half-way through it.
    w.park().unwrap();
    drop(w);
    {
        let st = session.state.lock().await;
        assert!(matches!(st.tail, Tail::Parked(..)));
        assert_eq!(
            (st.received, st.committed + tail_raw(&st)),
            (1 << 20, 1 << 20)
        );
    }
    assert_eq!(std::fs::read_dir(s.spool.dir()).unwrap().count(), 1);
    assert_eq!(
        s.spool.used(),
        (1u64 << 20) / 3 * 4 + 18,
        "the encoded body so far"
    );
    s.remove(session.id());
    drop(session);
    assert_eq!(std::fs::read_dir(s.spool.dir()).unwrap().count(), 0);
    assert_eq!(s.spool.used(), 0);
}
