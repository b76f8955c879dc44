//! Tests of the budget: promises block until memory frees, and handed-back buffers are reused,
//! bounded and trimmed.

use super::*;

const KIB: u64 = 1024;

#[tokio::test]
async fn reservations_block_until_memory_frees() {
    let b = Budget::new(10 * KIB);
    let r1 = b.reserve(6 * KIB).await;
    assert_eq!(b.in_use(), 6 * KIB);
    let b2 = b.clone();
    let waiter = tokio::spawn(async move { b2.reserve(6 * KIB).await });
    tokio::task::yield_now().await;
    assert!(!waiter.is_finished());
    drop(r1);
    let r2 = waiter.await.unwrap();
    assert_eq!(b.in_use(), 6 * KIB);
    drop(r2);
    assert_eq!(b.in_use(), 0);
}

#[tokio::test]
async fn a_handed_back_buffer_is_reused_with_its_promise() {
    let b = Budget::new(100 * KIB);
    let m = b.take(8 * 1024).await;
    assert_eq!((m.buf.len(), b.in_use()), (8 * 1024, 8 * KIB));
    let ptr = m.buf.as_ptr();
    let (buf, r) = m.into_parts();
    b.give(buf, r);
    assert_eq!(b.in_use(), 8 * KIB, "a free buffer keeps its promise");
    let again = b.take(8 * 1024).await;
    assert_eq!(again.buf.as_ptr(), ptr);
    assert_eq!(b.in_use(), 8 * KIB, "no second promise for a reused buffer");
    // Too small for a bigger part size: freed, and a new one is made.
    let (buf, r) = again.into_parts();
    b.give(buf, r);
    let bigger = b.take(16 * 1024).await;
    assert_eq!(bigger.buf.capacity(), 16 * 1024);
    assert_eq!(b.in_use(), 16 * KIB);
}

#[tokio::test]
async fn a_waiter_on_a_spent_budget_gets_the_buffer_handed_back() {
    let b = Budget::new(8 * KIB);
    let first = b.take(8 * 1024).await;
    let ptr = first.buf.as_ptr();
    let b2 = b.clone();
    let waiter = tokio::spawn(async move { b2.take(8 * 1024).await });
    tokio::task::yield_now().await;
    assert!(!waiter.is_finished(), "the budget is spent");
    let (buf, r) = first.into_parts();
    b.give(buf, r);
    let got = tokio::time::timeout(Duration::from_secs(10), waiter)
        .await
        .expect("the waiter is woken")
        .unwrap();
    assert_eq!(got.buf.as_ptr(), ptr);
    assert_eq!(b.in_use(), 8 * KIB);
}

#[tokio::test(start_paused = true)]
async fn only_a_few_free_buffers_are_kept_and_idle_ones_are_trimmed() {
    let b = Budget::new(100 * KIB);
    let mut held = Vec::new();
    for _ in 0..MAX_FREE + 2 {
        held.push(b.take(4 * 1024).await);
    }
    assert_eq!(b.in_use(), (MAX_FREE as u64 + 2) * 4 * KIB);
    for m in held {
        let (buf, r) = m.into_parts();
        b.give(buf, r);
    }
    assert_eq!(b.in_use(), MAX_FREE as u64 * 4 * KIB);
    assert_eq!(b.trim(Duration::from_secs(3600)), 0);
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(b.trim(Duration::from_millis(10)), MAX_FREE);
    assert_eq!(b.in_use(), 0);
}

#[tokio::test(start_paused = true)]
async fn after_a_burst_the_free_list_shrinks_to_what_is_used() {
    let b = Budget::new(100 * KIB);
    let mut burst = Vec::new();
    for _ in 0..6 {
        burst.push(b.take(4 * 1024).await);
    }
    for m in burst {
        let (buf, r) = m.into_parts();
        b.give(buf, r);
    }
    assert_eq!(b.in_use(), 6 * 4 * KIB, "the burst's buffers are kept");
    tokio::time::sleep(STALE + Duration::from_millis(50)).await;
    // One upload goes on: it takes one buffer and hands it back; the stale ones go.
    let m = b.take(4 * 1024).await;
    let (buf, r) = m.into_parts();
    b.give(buf, r);
    assert_eq!(b.in_use(), 4 * KIB);
}

#[tokio::test(start_paused = true)]
async fn a_spent_budget_is_waited_for_a_bounded_time_and_idle_holders_are_told() {
    let b = Budget::new(8 * KIB);
    let held = b
        .take_within(8 * 1024, Duration::from_secs(1))
        .await
        .unwrap();
    let b2 = b.clone();
    let told = tokio::spawn(async move { b2.pressured().await });
    let refused = b
        .take_within(8 * 1024, Duration::from_secs(5))
        .await
        .expect_err("nothing comes back within the wait");
    assert_eq!(refused.0, Duration::from_secs(5));
    assert!(
        told.await.is_ok(),
        "idle holders were told to give memory up"
    );
    drop(held);
    b.take_within(8 * 1024, Duration::from_secs(5))
        .await
        .expect("memory freed is taken");
}

#[tokio::test]
async fn handed_back_buffers_go_to_the_waiters_in_the_order_they_came() {
    let b = Budget::new(4 * KIB);
    let first = b.take(4 * 1024).await;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    for i in 0..3 {
        let (b, tx) = (b.clone(), tx.clone());
        tokio::spawn(async move {
            let m = b
                .take_within(4 * 1024, Duration::from_secs(60))
                .await
                .unwrap();
            tx.send(i).unwrap();
            let (buf, r) = m.into_parts();
            b.give(buf, r);
        });
        // Let each waiter queue before the next one comes.
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
    }
    // A newcomer does not jump the queue while others wait.
    let (buf, r) = first.into_parts();
    b.give(buf, r);
    let order: Vec<i32> = vec![
        rx.recv().await.unwrap(),
        rx.recv().await.unwrap(),
        rx.recv().await.unwrap(),
    ];
    assert_eq!(order, [0, 1, 2]);
}
