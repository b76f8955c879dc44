//! The token protocol's scopes: `repository:NAME:pull,push` and `registry:catalog:*`, as clients
//! ask for them (`scope=` on the token endpoint) and as the tokens we sign carry them (the
//! `access` claim, in distribution's shape). Parsing and printing only.

use super::Action;
use serde::{Deserialize, Serialize};

/// One resource and the actions on it, as a token carries them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Access {
    #[serde(rename = "type")]
    pub kind: String,
    pub name: String,
    pub actions: Vec<String>,
}

pub const REPOSITORY: &str = "repository";
pub const REGISTRY: &str = "registry";
pub const CATALOG: &str = "catalog";

impl Access {
    pub fn repository(name: &str, actions: &[Action]) -> Access {
        Access {
            kind: REPOSITORY.into(),
            name: name.into(),
            actions: actions.iter().map(|a| a.as_str().to_string()).collect(),
        }
    }

    pub fn catalog() -> Access {
        Access {
            kind: REGISTRY.into(),
            name: CATALOG.into(),
            actions: vec!["*".into()],
        }
    }

    /// Whether this entry allows `action` on repository `name`.
    pub fn allows(&self, name: &str, action: Action) -> bool {
        self.kind == REPOSITORY
            && self.name == name
            && self.actions.iter().any(|a| a == action.as_str())
    }

    pub fn is_catalog(&self) -> bool {
        self.kind == REGISTRY && self.name == CATALOG
    }

    /// The scope string (`repository:team-a/app:pull,push`).
    pub fn scope(&self) -> String {
        format!("{}:{}:{}", self.kind, self.name, self.actions.join(","))
    }
}

/// The most scopes one token request may ask for (a pull asks for one or two; a push with
/// mounts a few more).
pub const MAX_SCOPES: usize = 32;

/// Every scope in `scope=` values: each value may hold several, separated by spaces. A scope
/// whose type this registry does not know is dropped (the token simply does not grant it), as
/// distribution does; one that is not `type:name:actions`, names a repository ECR cannot hold,
/// or comes after `MAX_SCOPES` is an error (tokens stay small: they are cached).
pub fn parse<'a>(values: impl IntoIterator<Item = &'a str>) -> Result<Vec<Access>, String> {
    let mut out = Vec::new();
    for (i, scope) in values
        .into_iter()
        .flat_map(str::split_whitespace)
        .enumerate()
    {
        if i >= MAX_SCOPES {
            return Err(format!(
                "at most {MAX_SCOPES} scopes may be asked for at once"
            ));
        }
        let (kind, rest) = scope
            .split_once(':')
            .ok_or_else(|| format!("scope `{scope}` is not `type:name:actions`"))?;
        let (name, actions) = rest
            .rsplit_once(':')
            .ok_or_else(|| format!("scope `{scope}` is not `type:name:actions`"))?;
        if name.is_empty() {
            return Err(format!("scope `{scope}` names no resource"));
        }
        let actions: Vec<String> = actions
            .split(',')
            .filter(|a| !a.is_empty())
            .flat_map(|a| match a {
                // `*` asks for everything a repository offers.
                "*" if kind == REPOSITORY => vec!["pull", "push", "delete"],
                a => vec![a],
            })
            .map(str::to_string)
            .collect();
        if kind == REPOSITORY {
            if let Some(why) = crate::names::ecr_repository_name_problem(name) {
                return Err(format!("scope `{scope}`: {why}"));
            }
        }
        if kind == REGISTRY && name != CATALOG {
            continue;
        }
        match kind {
            REPOSITORY | REGISTRY => out.push(Access {
                kind: kind.into(),
                name: name.into(),
                actions,
            }),
            _ => {}
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_what_clients_send() {
        let got = parse([
            "repository:team-a/app:pull,push",
            "repository:team-b/x:pull registry:catalog:*",
            "foo:bar:baz",
        ])
        .unwrap();
        assert_eq!(got.len(), 3);
        assert_eq!(got[0].name, "team-a/app");
        assert_eq!(got[0].actions, vec!["pull", "push"]);
        assert_eq!(got[1].name, "team-b/x");
        assert!(got[2].is_catalog());
        // Names ECR cannot hold, and too many scopes, are refused: tokens stay small.
        assert!(parse(["repository:localhost:5000/x:pull"]).is_err());
        assert!(parse([format!("repository:a{}:pull", "b".repeat(300)).as_str()]).is_err());
        let many: Vec<String> = (0..33)
            .map(|i| format!("repository:r{i:02}/x:pull"))
            .collect();
        assert!(parse(many.iter().map(String::as_str)).is_err());
        assert_eq!(
            parse(["repository:ab:*"]).unwrap()[0].actions,
            vec!["pull", "push", "delete"]
        );
        assert!(parse(["repository"]).is_err());
        assert!(parse(["repository::pull"]).is_err());
        assert_eq!(got[0].scope(), "repository:team-a/app:pull,push");
        assert!(got[0].allows("team-a/app", Action::Push));
        assert!(!got[0].allows("team-b/app", Action::Push));
        assert!(!got[0].allows("team-a/app", Action::Delete));
    }
}
