//! One readiness probe at a time. `/readyz` is asked by kubelets, load balancers and (on the
//! admin port) anything on the pod network; each answer needs one ECR call, and a flood of probes
//! must not turn into a flood of DescribeRepositories calls that gets the account throttled. So
//! concurrent probes share one call: a probe waits for the call in flight and takes its answer
//! when that call ended after the probe arrived; otherwise it makes the next call. Nothing is
//! cached past that, so readiness flips on the first probe after ECR changes. Knows nothing of
//! HTTP or of which call is made.

use std::future::Future;
use tokio::sync::Mutex;
use tokio::time::Instant;

/// The last probe's answer, shared with the probes that arrived while it ran.
#[derive(Default)]
pub struct Readiness {
    last: Mutex<Option<Answer>>,
}

struct Answer {
    ended: Instant,
    result: Result<(), String>,
}

impl Readiness {
    /// The answer of `probe`, or of a call that ended after this request arrived.
    pub async fn check<F, Fut>(&self, probe: F) -> Result<(), String>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<(), String>>,
    {
        let arrived = Instant::now();
        let mut last = self.last.lock().await;
        if let Some(a) = last.as_ref().filter(|a| a.ended > arrived) {
            return a.result.clone();
        }
        let result = probe().await;
        *last = Some(Answer {
            ended: Instant::now(),
            result: result.clone(),
        });
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::time::Duration;

    #[tokio::test]
    async fn concurrent_probes_share_one_call() {
        let r = Arc::new(Readiness::default());
        let calls = Arc::new(AtomicUsize::new(0));
        let probes: Vec<_> = (0..100)
            .map(|_| {
                let (r, calls) = (r.clone(), calls.clone());
                tokio::spawn(async move {
                    r.check(|| async {
                        calls.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        Ok(())
                    })
                    .await
                })
            })
            .collect();
        for p in probes {
            assert_eq!(p.await.unwrap(), Ok(()));
        }
        // The first call, and at most one more for the probes that arrived while it ran.
        let n = calls.load(Ordering::SeqCst);
        assert!((1..=2).contains(&n), "{n} calls for 100 concurrent probes");
    }

    #[tokio::test]
    async fn a_later_probe_asks_again_and_sees_the_change() {
        let r = Readiness::default();
        assert_eq!(r.check(|| async { Ok(()) }).await, Ok(()));
        assert_eq!(
            r.check(|| async { Err("ECR is gone".to_string()) }).await,
            Err("ECR is gone".to_string())
        );
        assert_eq!(r.check(|| async { Ok(()) }).await, Ok(()));
    }
}
