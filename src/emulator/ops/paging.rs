//! ECR's pagination: `maxResults` (default page 100) and an opaque `nextToken` that remembers the
//! last key handed out, so pages stay correct while the list changes underneath.
//! Pure functions; no store access.

use crate::emulator::error::{EcrError, EcrResult};
use base64_simd::URL_SAFE_NO_PAD;

const DEFAULT_PAGE: usize = 100;

/// Take one page from `items` (sorted by `key`), after the key in `token`.
pub fn page<T>(
    items: Vec<T>,
    key: impl Fn(&T) -> String,
    token: Option<&str>,
    max_results: Option<usize>,
) -> EcrResult<(Vec<T>, Option<String>)> {
    let after = match token {
        None => None,
        Some(t) => Some(decode(t)?),
    };
    let limit = max_results.unwrap_or(DEFAULT_PAGE);
    let mut rest: Vec<T> = items
        .into_iter()
        .filter(|i| after.as_deref().is_none_or(|a| key(i).as_str() > a))
        .collect();
    let next = if rest.len() > limit {
        rest.truncate(limit);
        rest.last().map(|last| encode(&key(last)))
    } else {
        None
    };
    Ok((rest, next))
}

fn encode(key: &str) -> String {
    URL_SAFE_NO_PAD.encode_to_string(format!("ecr-emulator:1:{key}"))
}

fn decode(token: &str) -> EcrResult<String> {
    URL_SAFE_NO_PAD
        .decode_to_vec(token)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|s| s.strip_prefix("ecr-emulator:1:").map(str::to_string))
        .ok_or_else(|| EcrError::invalid("nextToken", "Invalid NextToken"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_follow_tokens_to_the_end() {
        let items: Vec<String> = (0..250).map(|i| format!("{i:04}")).collect();
        let mut seen = Vec::new();
        let mut token = None;
        loop {
            let (p, next) = page(items.clone(), |s| s.clone(), token.as_deref(), None).unwrap();
            assert!(p.len() <= 100);
            seen.extend(p);
            match next {
                Some(t) => token = Some(t),
                None => break,
            }
        }
        assert_eq!(seen, items);
        assert!(page(items, |s| s.clone(), Some("garbage!"), None).is_err());
    }
}
