//! The rules: first match decides, anonymous pulls, subject patterns and claims, the catalog.

use super::*;
use crate::auth::Kind;
use std::collections::BTreeMap;
use std::sync::Arc;

fn rule(subjects: &[&str], repos: &[&str], actions: &[Action]) -> Rule {
    Rule {
        subjects: subjects.iter().map(|s| s.to_string()).collect(),
        claims: BTreeMap::new(),
        repositories: repos.iter().map(|s| s.to_string()).collect(),
        actions: actions.to_vec(),
    }
}

/// The example: alice owns team-a/*, everyone signed in may pull everything.
fn example() -> Rules {
    Rules::new(
        vec![
            rule(
                &["alice"],
                &["team-a/*"],
                &[Action::Pull, Action::Push, Action::Delete],
            ),
            rule(&["*"], &["*"], &[Action::Pull]),
        ],
        vec!["public/*".into()],
    )
}

fn user(name: &str) -> Subject {
    Subject::new(name, Kind::Password)
}

#[test]
fn the_first_matching_rule_decides() {
    let r = example();
    assert_eq!(
        r.allows(&user("alice"), "team-a/app", Action::Push),
        (true, Decided::Rule(1))
    );
    assert_eq!(
        r.allows(&user("alice"), "team-b/app", Action::Push),
        (false, Decided::Rule(2))
    );
    assert_eq!(
        r.allows(&user("bob"), "team-a/app", Action::Push),
        (false, Decided::Rule(2))
    );
    assert_eq!(
        r.allows(&user("bob"), "team-a/app", Action::Pull),
        (true, Decided::Rule(2))
    );
    // A rule with no actions denies what later rules would allow.
    let deny_first = Rules::new(
        vec![
            rule(&["mallory"], &["*"], &[]),
            rule(&["*"], &["*"], &[Action::Pull]),
        ],
        vec![],
    );
    assert_eq!(
        deny_first.allows(&user("mallory"), "x", Action::Pull),
        (false, Decided::Rule(1))
    );
}

#[test]
fn anonymous_clients_pull_only_public_repositories() {
    let r = example();
    let anon = Subject::anonymous();
    assert_eq!(
        r.allows(&anon, "public/base", Action::Pull),
        (true, Decided::AnonymousPull)
    );
    assert_eq!(
        r.allows(&anon, "public/base", Action::Push),
        (false, Decided::AnonymousPull)
    );
    assert_eq!(
        r.allows(&anon, "team-a/app", Action::Pull),
        (false, Decided::NoRule)
    );
    // `*` means any signed-in subject, never the anonymous one.
    assert!(!r.lists(&anon, "team-a/app"));
    assert!(r.lists(&anon, "public/base"));
    // A subject whose rule does not grant pull may still pull what anyone may.
    let only_push = Rules::new(
        vec![rule(&["ci"], &["*"], &[Action::Push])],
        vec!["public/*".into()],
    );
    assert!(only_push.allows(&user("ci"), "public/x", Action::Pull).0);
    assert!(!only_push.allows(&user("ci"), "private/x", Action::Pull).0);
}

#[test]
fn subject_patterns_and_claims() {
    let mut main_only = rule(&["repo:org/*"], &["org/*"], &[Action::Push, Action::Pull]);
    main_only
        .claims
        .insert("ref".into(), "refs/heads/main".into());
    let r = Rules::new(vec![main_only], vec![]);
    let mut gh = Subject::new("repo:org/app:ref:refs/heads/main", Kind::Oidc);
    gh.claims = Arc::new(BTreeMap::from([("ref".into(), "refs/heads/main".into())]));
    assert!(r.allows(&gh, "org/app", Action::Push).0);
    let mut branch = gh.clone();
    branch.claims = Arc::new(BTreeMap::from([("ref".into(), "refs/heads/dev".into())]));
    assert_eq!(
        r.allows(&branch, "org/app", Action::Push),
        (false, Decided::NoRule)
    );
    // A subject without the claim (an htpasswd user of the same name) does not match.
    let plain = Subject::new("repo:org/app:ref:refs/heads/main", Kind::Password);
    assert!(!r.allows(&plain, "org/app", Action::Pull).0);
    assert_eq!(r.claim_names().collect::<Vec<_>>(), vec!["ref"]);
}

#[test]
fn catalog_lists_what_may_be_pulled_or_seen() {
    let r = Rules::new(
        vec![
            rule(&["bob"], &["secret/*"], &[Action::Catalog]),
            rule(&["bob"], &["team-b/*"], &[Action::Pull]),
        ],
        vec![],
    );
    let bob = user("bob");
    assert!(r.lists(&bob, "secret/x"));
    assert!(!r.allows(&bob, "secret/x", Action::Pull).0);
    assert!(r.lists(&bob, "team-b/app"));
    assert!(!r.lists(&bob, "team-a/app"));
}
