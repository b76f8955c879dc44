//! Where one issuer's keys come from, and when they are fetched again. A local `jwks_file` is a
//! `watch::Watched` file (re-read when it changes). A remote set (`jwks_url`, or discovered) is
//! fetched on first use and kept; it is fetched again:
//! - when it is older than `MAX_AGE`, in the background of the request that notices (which
//!   goes on with the keys it has);
//! - when a token names a key the set lacks, at most once per `REFETCH_GAP` per issuer, so
//!   tokens with made-up `kid`s cannot make us hammer the issuer;
//! - with no keys yet after a failure, at most once per `RETRY_EMPTY`.
//!
//! Concurrent fetches of one issuer are one fetch: later callers wait for it and take its
//! outcome. A failed fetch logs one WARN line and keeps the keys held before; with none, it is
//! `Failure::Unavailable` naming the issuer and the URL. Nothing here reads tokens.

use super::fetch::Http;
use super::keys::KeySet;
use super::Failure;
use crate::watch::Watched;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A fetched set is fetched again after this long.
pub const MAX_AGE: Duration = Duration::from_secs(3600);
/// The least time between two fetches of one issuer caused by unknown keys.
pub const REFETCH_GAP: Duration = Duration::from_secs(30);
/// The least time between two attempts while an issuer has no keys at all.
pub const RETRY_EMPTY: Duration = Duration::from_secs(5);

/// `Instant::now()` and the Unix time, which unit tests can move forward.
#[derive(Default)]
pub struct Clock {
    skew_ms: AtomicU64,
}

impl Clock {
    pub fn now(&self) -> Instant {
        Instant::now() + Duration::from_millis(self.skew_ms.load(Ordering::Relaxed))
    }

    /// Seconds since the Unix epoch, moved as `now` is.
    pub fn unix_now(&self) -> u64 {
        jsonwebtoken::get_current_timestamp() + self.skew_ms.load(Ordering::Relaxed) / 1000
    }

    #[cfg(test)]
    pub fn advance(&self, by: Duration) {
        self.skew_ms
            .fetch_add(by.as_millis() as u64, Ordering::Relaxed);
    }
}

/// One issuer's keys.
pub enum Source {
    File(Watched<KeySet>),
    Remote(Arc<Remote>),
}

impl Source {
    /// The keys to verify with now.
    pub async fn keys(&self) -> Result<Arc<KeySet>, Failure> {
        match self {
            Source::File(w) => Ok(w.get()),
            Source::Remote(r) => r.keys().await,
        }
    }

    /// A freshly fetched set after a token named a key the set lacks, when one may be fetched
    /// now (a file is re-read on its own).
    pub async fn refetch(&self) -> Option<Arc<KeySet>> {
        match self {
            Source::File(_) => None,
            Source::Remote(r) => r.refetch().await,
        }
    }
}

#[derive(Default)]
struct State {
    keys: Option<Arc<KeySet>>,
    /// When `keys` were fetched.
    fetched: Option<Instant>,
    /// When the last fetch (good or failed) ended, and how many there were.
    attempted: Option<Instant>,
    attempts: u64,
    /// Why the last fetch failed, when it did.
    error: Option<String>,
    /// The `jwks_uri` discovery found (forgotten when a fetch fails).
    discovered: Option<String>,
    refreshing: bool,
}

/// Keys fetched over HTTP(S).
pub struct Remote {
    issuer: String,
    jwks_url: Option<String>,
    http: Http,
    clock: Arc<Clock>,
    state: Mutex<State>,
    /// Held while a fetch runs: one fetch per issuer at a time.
    flight: tokio::sync::Mutex<()>,
}

fn older(t: Option<Instant>, now: Instant, than: Duration) -> bool {
    t.is_none_or(|t| now.saturating_duration_since(t) >= than)
}

impl Remote {
    pub fn new(issuer: &str, jwks_url: Option<&str>, http: Http, clock: Arc<Clock>) -> Remote {
        Remote {
            issuer: issuer.to_string(),
            jwks_url: jwks_url.map(str::to_string),
            http,
            clock,
            state: Mutex::new(State::default()),
            flight: tokio::sync::Mutex::new(()),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().expect("OIDC key state")
    }

    async fn keys(self: &Arc<Self>) -> Result<Arc<KeySet>, Failure> {
        let now = self.clock.now();
        let seen = {
            let mut s = self.state();
            if let Some(keys) = &s.keys {
                let keys = keys.clone();
                if older(s.fetched, now, MAX_AGE)
                    && older(s.attempted, now, REFETCH_GAP)
                    && !s.refreshing
                {
                    s.refreshing = true;
                    let me = self.clone();
                    let seen = s.attempts;
                    tokio::spawn(async move {
                        let _ = me.fetch(seen).await;
                        me.state().refreshing = false;
                    });
                }
                return Ok(keys);
            }
            if !older(s.attempted, now, RETRY_EMPTY) {
                if let Some(e) = &s.error {
                    return Err(Failure::Unavailable(e.clone()));
                }
            }
            s.attempts
        };
        self.fetch(seen).await.map_err(Failure::Unavailable)
    }

    async fn refetch(&self) -> Option<Arc<KeySet>> {
        let seen = {
            let s = self.state();
            if !older(s.attempted, self.clock.now(), REFETCH_GAP) {
                return None;
            }
            s.attempts
        };
        self.fetch(seen).await.ok()
    }

    /// Fetch the set, unless a fetch ended since the caller looked (`seen` attempts): then
    /// that fetch's outcome.
    async fn fetch(&self, seen: u64) -> Result<Arc<KeySet>, String> {
        let _one = self.flight.lock().await;
        let discovered = {
            let s = self.state();
            if s.attempts != seen {
                return match (&s.keys, &s.error) {
                    (_, Some(e)) => Err(e.clone()),
                    (Some(k), None) => Ok(k.clone()),
                    (None, None) => Err(format!("no keys for issuer `{}`", self.issuer)),
                };
            }
            s.discovered.clone()
        };
        let got = self.download(discovered).await;
        let now = self.clock.now();
        let mut s = self.state();
        s.attempts += 1;
        s.attempted = Some(now);
        match got {
            Ok((set, url)) => {
                tracing::info!(issuer = %self.issuer, url = %url, keys = set.len(), "fetched the issuer's signing keys");
                let set = Arc::new(set);
                s.keys = Some(set.clone());
                s.fetched = Some(now);
                s.error = None;
                if self.jwks_url.is_none() {
                    s.discovered = Some(url);
                }
                Ok(set)
            }
            Err(why) => {
                let msg = format!("cannot fetch the keys of issuer `{}`: {why}", self.issuer);
                match s.fetched {
                    Some(t) => tracing::warn!(
                        "{msg}; keeping the keys fetched {} s ago",
                        now.saturating_duration_since(t).as_secs()
                    ),
                    None => tracing::warn!("{msg}; its tokens cannot be checked until it works"),
                }
                s.error = Some(msg.clone());
                s.discovered = None;
                Err(msg)
            }
        }
    }

    /// The set and the URL it came from.
    async fn download(&self, discovered: Option<String>) -> Result<(KeySet, String), String> {
        let url = match (&self.jwks_url, discovered) {
            (Some(u), _) => u.clone(),
            (None, Some(u)) => u,
            (None, None) => self.http.discover(&self.issuer).await?,
        };
        let set = self.http.jwks(&url).await?;
        Ok((set, url))
    }
}
