//! Deterministic fault injection for tests: per operation, a fraction of calls answered with
//! ThrottlingException or ServerException, added latency, and connections dropped after the
//! request was carried out (so the caller cannot know whether it landed). The n-th call of an
//! operation gets the same fate for the same seed, whatever the timing.
//!
//! Spec: `OP:key=value,...;OP2:...` with `OP` an operation name or `*`, keys `throttle`,
//! `server`, `drop` (fractions 0–1), `latency` (`250ms`), and the window of calls the rule applies
//! to: `after=N` spares the first N calls, `count=M` affects only the M calls after those.
//! Example: `UploadLayerPart:throttle=0.2,drop=0.1;*:latency=5ms`;
//! `UploadLayerPart:throttle=1,after=2,count=3` throttles calls 3, 4 and 5 only.
//! This module decides; it does not answer requests (see `api`).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

#[derive(Clone, Debug, Default, PartialEq)]
struct Rule {
    throttle: f64,
    server: f64,
    drop: f64,
    latency: Duration,
    after: u64,
    count: Option<u64>,
}

/// What happens to one call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Fault {
    Throttle,
    Server,
    /// Carry the call out, then close the connection without answering.
    DropAfter,
}

/// The configured faults and the per-operation call counters.
#[derive(Debug, Default)]
pub struct Faults {
    seed: u64,
    rules: HashMap<String, Rule>,
    counters: Mutex<HashMap<String, u64>>,
    /// Faults injected per operation and kind.
    injected: Mutex<HashMap<(String, Fault), u64>>,
}

impl Faults {
    /// No faults.
    pub fn none() -> Faults {
        Faults::default()
    }

    pub fn parse(spec: &str, seed: u64) -> Result<Faults, String> {
        let mut rules = HashMap::new();
        for clause in spec.split(';').map(str::trim).filter(|c| !c.is_empty()) {
            let (op, settings) = clause.split_once(':').ok_or_else(|| {
                format!("fault clause `{clause}` needs the form OP:key=value,...")
            })?;
            let mut rule = Rule::default();
            for kv in settings.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                let (k, v) = kv
                    .split_once('=')
                    .ok_or_else(|| format!("fault setting `{kv}` needs key=value"))?;
                let fraction = || -> Result<f64, String> {
                    v.parse::<f64>()
                        .ok()
                        .filter(|f| (0.0..=1.0).contains(f))
                        .ok_or_else(|| {
                            format!("fault `{k}` wants a fraction between 0 and 1, got `{v}`")
                        })
                };
                match k {
                    "throttle" => rule.throttle = fraction()?,
                    "server" => rule.server = fraction()?,
                    "drop" => rule.drop = fraction()?,
                    "after" | "count" => {
                        let n = v.parse::<u64>().map_err(|_| {
                            format!("fault `{k}` wants a whole number of calls, got `{v}`")
                        })?;
                        if k == "after" {
                            rule.after = n;
                        } else {
                            rule.count = Some(n);
                        }
                    }
                    "latency" => {
                        let ms = v.strip_suffix("ms").and_then(|n| n.parse::<u64>().ok());
                        rule.latency = Duration::from_millis(ms.ok_or_else(|| {
                            format!("fault latency wants milliseconds like `50ms`, got `{v}`")
                        })?);
                    }
                    _ => {
                        return Err(format!(
                        "unknown fault `{k}` (use throttle, server, drop, latency, after or count)"
                    ))
                    }
                }
            }
            if rule.throttle + rule.server + rule.drop > 1.0 {
                return Err(format!("fault fractions for `{op}` add up to more than 1"));
            }
            rules.insert(op.trim().to_string(), rule);
        }
        Ok(Faults {
            seed,
            rules,
            counters: Mutex::new(HashMap::new()),
            injected: Mutex::new(HashMap::new()),
        })
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Calls of `op` seen so far (counted only for operations a rule covers).
    pub fn calls(&self, op: &str) -> u64 {
        let c = self.counters.lock().unwrap_or_else(|p| p.into_inner());
        c.get(op).copied().unwrap_or(0)
    }

    /// Faults of `kind` injected into `op` so far.
    pub fn injected(&self, op: &str, kind: Fault) -> u64 {
        let c = self.injected.lock().unwrap_or_else(|p| p.into_inner());
        c.get(&(op.to_string(), kind)).copied().unwrap_or(0)
    }

    /// The latency to add to, and the fault (if any) to inject into, the next call of `op`.
    pub fn decide(&self, op: &str) -> (Duration, Option<Fault>) {
        let Some(rule) = self.rules.get(op).or_else(|| self.rules.get("*")) else {
            return (Duration::ZERO, None);
        };
        let n = {
            let mut c = self.counters.lock().unwrap_or_else(|p| p.into_inner());
            let n = c.entry(op.to_string()).or_insert(0);
            *n += 1;
            *n
        };
        let r = unit(self.seed ^ fnv(op) ^ n.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let in_window = n > rule.after && rule.count.is_none_or(|c| n <= rule.after + c);
        let fault = if !in_window {
            None
        } else if r < rule.throttle {
            Some(Fault::Throttle)
        } else if r < rule.throttle + rule.server {
            Some(Fault::Server)
        } else if r < rule.throttle + rule.server + rule.drop {
            Some(Fault::DropAfter)
        } else {
            None
        };
        if let Some(f) = fault {
            let mut c = self.injected.lock().unwrap_or_else(|p| p.into_inner());
            *c.entry((op.to_string(), f)).or_insert(0) += 1;
        }
        (rule.latency, fault)
    }
}

fn fnv(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ b as u64).wrapping_mul(0x100_0000_01b3)
    })
}

/// splitmix64, mapped to [0, 1).
fn unit(x: u64) -> f64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fates(f: &Faults, op: &str, n: usize) -> Vec<Option<Fault>> {
        (0..n).map(|_| f.decide(op).1).collect()
    }

    #[test]
    fn same_seed_same_fates_and_rates_are_roughly_honoured() {
        let spec = "UploadLayerPart:throttle=0.2,server=0.1,drop=0.1,latency=5ms";
        let a = fates(&Faults::parse(spec, 7).unwrap(), "UploadLayerPart", 2000);
        let b = fates(&Faults::parse(spec, 7).unwrap(), "UploadLayerPart", 2000);
        assert_eq!(a, b);
        let c = fates(&Faults::parse(spec, 8).unwrap(), "UploadLayerPart", 2000);
        assert_ne!(a, c);
        let count = |f: Fault| a.iter().filter(|x| **x == Some(f)).count();
        assert!(
            (300..500).contains(&count(Fault::Throttle)),
            "{}",
            count(Fault::Throttle)
        );
        assert!((130..270).contains(&count(Fault::Server)));
        assert!((130..270).contains(&count(Fault::DropAfter)));
        let f = Faults::parse(spec, 7).unwrap();
        assert_eq!(f.decide("PutImage"), (Duration::ZERO, None));
        assert_eq!(f.decide("UploadLayerPart").0, Duration::from_millis(5));
    }

    #[test]
    fn a_window_limits_which_calls_a_rule_hits() {
        let f = Faults::parse("UploadLayerPart:throttle=1,after=2,count=3", 1).unwrap();
        let t = Some(Fault::Throttle);
        assert_eq!(
            fates(&f, "UploadLayerPart", 7),
            [None, None, t, t, t, None, None]
        );
        assert!(Faults::parse("X:throttle=1,count=x", 1)
            .unwrap_err()
            .contains("whole number"));
    }

    #[test]
    fn bad_specs_say_what_is_wrong() {
        assert!(Faults::parse("X:throttle=2", 1)
            .unwrap_err()
            .contains("fraction"));
        assert!(Faults::parse("X:bogus=1", 1)
            .unwrap_err()
            .contains("unknown fault"));
        assert!(Faults::parse("nocolon", 1).is_err());
        assert!(Faults::parse("X:throttle=0.6,server=0.6", 1).is_err());
        assert!(
            Faults::parse("*:latency=10ms", 1).unwrap().decide("Any").0
                == Duration::from_millis(10)
        );
    }
}
