//! Whether Redis is reachable, as the last operation or subscription attempt found it; each
//! change is logged once (WARN when lost, INFO when back), so an outage is two lines, not one
//! per request. Owns only that flag; it performs no Redis call.

use std::sync::atomic::{AtomicU8, Ordering};

const UNKNOWN: u8 = 0;
const UP: u8 = 1;
const DOWN: u8 = 2;

#[derive(Default)]
pub struct Health(AtomicU8);

impl Health {
    /// `None` until the first operation.
    pub fn reachable(&self) -> Option<bool> {
        match self.0.load(Ordering::Acquire) {
            UP => Some(true),
            DOWN => Some(false),
            _ => None,
        }
    }

    /// What `op` found; `why`: the failure when Redis could not be reached.
    pub fn note(&self, up: bool, op: &str, why: Option<&dyn std::fmt::Display>) {
        let new = if up { UP } else { DOWN };
        let old = self.0.swap(new, Ordering::AcqRel);
        if old == new {
            return;
        }
        match (old, up) {
            (DOWN, true) => tracing::info!(op, "Redis is reachable again"),
            (UNKNOWN, true) => tracing::info!(op, "Redis is reachable"),
            (_, false) => tracing::warn!(
                op,
                error = why.map(|w| w.to_string()).unwrap_or_default(),
                "Redis cannot be reached: shared state is unavailable until it is back"
            ),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tracks_the_last_finding() {
        let h = Health::default();
        assert_eq!(h.reachable(), None);
        h.note(false, "get", Some(&"refused"));
        assert_eq!(h.reachable(), Some(false));
        h.note(true, "get", None);
        h.note(true, "set", None);
        assert_eq!(h.reachable(), Some(true));
    }
}
