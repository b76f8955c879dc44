//! Manifest invalidations between replicas: after ECR accepted a manifest PUT with tags or a
//! DELETE, the replica that did it publishes a small JSON message on `{prefix}invalidate`, and
//! every replica (itself included: applying one twice does no harm) forgets what the message
//! names. Publishing never fails or slows a request: it runs on a task of its own, bounded by
//! the operation timeout, and a failure is logged and counted. Owns the message format and the
//! channel name; what "forget" means is the proxy's (it passes a handler).

use super::{Shared, SubscriptionEvent};
use serde::{Deserialize, Serialize};

/// The channel, after `key_prefix`.
pub const CHANNEL: &str = "invalidate";

/// What happened in ECR.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InvalidationKind {
    /// A manifest was pushed with `tag`: the tag now points to `digest`.
    Push,
    /// With `tag`: that tag was deleted (`digest`: the image it named). Without: the image
    /// `digest` was deleted, with every tag on it.
    Delete,
    /// Upload `upload` of the repository was completed or cancelled, or (with `version`) moved
    /// to another replica: a replica holding a stale copy of its session drops it.
    Upload,
}

/// One message: `{"kind":"delete","repository":"app","digest":"sha256:…"}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Invalidation {
    pub kind: InvalidationKind,
    pub repository: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upload: Option<String>,
    /// With `upload`: it moved to another replica, which took version `version` of it; copies
    /// of that version or older are stale. Without: the upload is over.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u64>,
}

/// What an invalidation handler sees.
#[derive(Debug)]
pub enum Notice {
    Invalidate(Invalidation),
    /// The subscription came back after a loss: messages may have been missed.
    Resubscribed,
}

impl Shared {
    /// Publish `msg` on a task of its own (fire and forget); a failure is logged and counted.
    pub fn invalidate(&self, msg: Invalidation) {
        let shared = self.clone();
        tokio::spawn(async move {
            let payload = serde_json::to_vec(&msg).expect("serialisable");
            if let Err(e) = shared.publish(CHANNEL, &payload).await {
                tracing::warn!(
                    repository = msg.repository,
                    error = %e,
                    "could not tell other replicas about a manifest change; they forget it \
                     within their cache's TTL"
                );
            }
        });
    }

    /// Subscribe to invalidations: `handler` gets each one, and `Resubscribed` after a loss.
    pub fn on_invalidation(&self, handler: impl Fn(Notice) + Send + Sync + 'static) {
        self.subscribe(CHANNEL, move |event| match event {
            SubscriptionEvent::Subscribed { after_loss: false } => {}
            SubscriptionEvent::Subscribed { after_loss: true } => handler(Notice::Resubscribed),
            SubscriptionEvent::Message(bytes) => match serde_json::from_slice(&bytes) {
                Ok(msg) => handler(Notice::Invalidate(msg)),
                Err(e) => tracing::warn!(
                    error = %e,
                    "ignored a message on the invalidation channel that is not an invalidation"
                ),
            },
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_message_is_small_json() {
        let m = Invalidation {
            kind: InvalidationKind::Delete,
            repository: "app".into(),
            tag: None,
            digest: Some("sha256:ab".into()),
            upload: None,
            version: None,
        };
        let text = serde_json::to_string(&m).unwrap();
        assert_eq!(
            text,
            r#"{"kind":"delete","repository":"app","digest":"sha256:ab"}"#
        );
        assert_eq!(serde_json::from_str::<Invalidation>(&text).unwrap(), m);
        let push: Invalidation =
            serde_json::from_str(r#"{"kind":"push","repository":"a/b","tag":"v1"}"#).unwrap();
        assert_eq!(push.tag.as_deref(), Some("v1"));
    }
}
