//! The access rules: for a subject, a repository and an action, allowed or not, and which rule
//! decided. The first rule whose subjects (and claims) and repositories match decides; its
//! actions are everything that subject may do there (so a rule with no actions denies). No
//! rule matching denies. Anonymous clients match no rule: they may only pull repositories that
//! `anonymous_pull` names, which everyone else may pull too. Pure functions over the config.

use super::{Action, Subject};
use crate::config::{glob, Rule};

/// Why a request was allowed or refused, for the log and the denial metric.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decided {
    /// By the rule with this number (from 1, as the config file lists them).
    Rule(usize),
    /// By `anonymous_pull`.
    AnonymousPull,
    /// No rule matched.
    NoRule,
}

impl std::fmt::Display for Decided {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Decided::Rule(n) => write!(f, "auth.rules #{n}"),
            Decided::AnonymousPull => f.write_str("anonymous_pull"),
            Decided::NoRule => f.write_str("no rule matched"),
        }
    }
}

/// The rules of `[auth]`.
#[derive(Clone, Debug, Default)]
pub struct Rules {
    rules: Vec<Rule>,
    anonymous_pull: Vec<String>,
}

impl Rules {
    pub fn new(rules: Vec<Rule>, anonymous_pull: Vec<String>) -> Rules {
        Rules {
            rules,
            anonymous_pull,
        }
    }

    /// The actions `subject` may take on `repository`, and what decided.
    pub fn granted(&self, subject: &Subject, repository: &str) -> (Vec<Action>, Decided) {
        let public = self.anonymous_pull.iter().any(|p| glob(p, repository));
        if !subject.is_anonymous() {
            for (i, rule) in self.rules.iter().enumerate() {
                if subject_matches(rule, subject)
                    && rule.repositories.iter().any(|p| glob(p, repository))
                {
                    let mut actions = rule.actions.clone();
                    if public && !actions.contains(&Action::Pull) {
                        actions.push(Action::Pull);
                    }
                    actions.sort();
                    actions.dedup();
                    return (actions, Decided::Rule(i + 1));
                }
            }
        }
        if public {
            (vec![Action::Pull], Decided::AnonymousPull)
        } else {
            (Vec::new(), Decided::NoRule)
        }
    }

    /// Whether `subject` may take `action` on `repository`, and what decided.
    pub fn allows(&self, subject: &Subject, repository: &str, action: Action) -> (bool, Decided) {
        let (actions, why) = self.granted(subject, repository);
        (actions.contains(&action), why)
    }

    /// Whether `repository` shows in `subject`'s `/v2/_catalog`: it may pull it or see it.
    pub fn lists(&self, subject: &Subject, repository: &str) -> bool {
        let (actions, _) = self.granted(subject, repository);
        actions.contains(&Action::Pull) || actions.contains(&Action::Catalog)
    }

    /// The claim names any rule looks at (a token we sign carries these, so rules still apply
    /// to what it names).
    pub fn claim_names(&self) -> impl Iterator<Item = &str> {
        self.rules
            .iter()
            .flat_map(|r| r.claims.keys().map(String::as_str))
    }
}

fn subject_matches(rule: &Rule, subject: &Subject) -> bool {
    let named = rule
        .subjects
        .iter()
        .any(|p| p == "*" || glob(p, &subject.name));
    named
        && rule.claims.iter().all(|(claim, pattern)| {
            subject
                .claims
                .get(claim)
                .is_some_and(|value| glob(pattern, value))
        })
}

#[cfg(test)]
mod tests;
