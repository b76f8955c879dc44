//! One pub/sub subscription kept alive: connect (a connection of its own: a subscribed
//! connection can do nothing else), subscribe, hand every message to the handler, ping every few
//! seconds so a silently dead connection is noticed, and on any failure connect again after a
//! short backoff (100 ms doubling to 1 s). Messages published while no subscription stood are
//! lost; the handler is told so by `Subscribed { after_loss: true }`. Owns no state beyond its
//! task; it must not interpret messages.

use super::health::Health;
use crate::metrics::Metrics;
use futures_util::StreamExt;
use std::time::Duration;

/// What a subscription's handler sees.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubscriptionEvent {
    /// Subscribed. `after_loss`: an earlier attempt failed or an earlier subscription broke, so
    /// messages may have been missed meanwhile.
    Subscribed { after_loss: bool },
    /// A message's payload.
    Message(Vec<u8>),
}

const PING_EVERY: Duration = Duration::from_secs(5);
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(1);

/// Why one subscription ended.
#[derive(Debug, thiserror::Error)]
enum Ended {
    #[error("{0}")]
    Redis(#[from] redis::RedisError),
    #[error("no answer within {} s", super::CONNECT_TIMEOUT.as_secs())]
    TimedOut,
    #[error("the connection closed")]
    Closed,
}

pub async fn run(
    client: redis::Client,
    channel: String,
    health: std::sync::Arc<Health>,
    metrics: Metrics,
    handler: impl Fn(SubscriptionEvent) + Send + Sync + 'static,
) {
    let mut lost = false;
    let mut backoff = FIRST_BACKOFF;
    loop {
        let ended = subscribed(
            &client,
            &channel,
            &health,
            &mut lost,
            &mut backoff,
            &handler,
        )
        .await;
        metrics.redis_error("subscribe");
        health.note(false, "subscribe", Some(&ended));
        if !lost {
            tracing::warn!(
                channel,
                error = %ended,
                "Redis subscription lost: invalidations from other replicas are missed until it \
                 is back"
            );
        }
        lost = true;
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// Connect, subscribe and serve messages until something fails.
async fn subscribed(
    client: &redis::Client,
    channel: &str,
    health: &Health,
    lost: &mut bool,
    backoff: &mut Duration,
    handler: &(impl Fn(SubscriptionEvent) + Send + Sync),
) -> Ended {
    let timeout = super::CONNECT_TIMEOUT + super::RESPONSE_TIMEOUT;
    let pubsub = match tokio::time::timeout(timeout, async {
        let mut p = client.get_async_pubsub().await?;
        p.subscribe(channel).await?;
        Ok::<_, redis::RedisError>(p)
    })
    .await
    {
        Ok(Ok(p)) => p,
        Ok(Err(e)) => return e.into(),
        Err(_) => return Ended::TimedOut,
    };
    health.note(true, "subscribe", None);
    if *lost {
        tracing::info!(channel, "Redis subscription back");
    }
    handler(SubscriptionEvent::Subscribed { after_loss: *lost });
    *lost = false;
    *backoff = FIRST_BACKOFF;
    let (mut sink, mut stream) = pubsub.split();
    let mut ping = tokio::time::interval(PING_EVERY);
    ping.tick().await;
    loop {
        tokio::select! {
            msg = stream.next() => match msg {
                Some(m) => handler(SubscriptionEvent::Message(m.get_payload_bytes().to_vec())),
                None => return Ended::Closed,
            },
            _ = ping.tick() => {
                match tokio::time::timeout(super::RESPONSE_TIMEOUT, sink.ping::<String>()).await {
                    Ok(Ok(_)) => {}
                    Ok(Err(e)) => return e.into(),
                    Err(_) => return Ended::TimedOut,
                }
            }
        }
    }
}
