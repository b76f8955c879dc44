//! The grammar of repository names, tags and digests, as pure predicates. Both the emulator (ECR's
//! patterns) and the proxy (the OCI distribution grammar) check input here.
//! This module must not allocate errors or know about HTTP: callers decide what a mismatch means.

/// ECR's current `RepositoryName` pattern (botocore 1.44), which is also the OCI distribution
/// name grammar: `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(\/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*`.
/// Length is checked separately.
pub fn is_repository_name(name: &str) -> bool {
    !name.is_empty() && name.split('/').all(is_name_component)
}

/// ECR's `RepositoryName` length: 2 to 256 characters. OCI allows a one-letter name; ECR does not.
pub const ECR_REPOSITORY_NAME_LEN: std::ops::RangeInclusive<usize> = 2..=256;

/// Why ECR cannot hold repository `name`, or `None` when it can (length and pattern).
pub fn ecr_repository_name_problem(name: &str) -> Option<&'static str> {
    if !ECR_REPOSITORY_NAME_LEN.contains(&name.len()) {
        Some("ECR repository names are 2 to 256 characters long")
    } else if !is_repository_name(name) {
        Some("ECR repository names are lowercase letters and digits, separated by `.`, `_`, `__`, runs of `-`, or `/`")
    } else {
        None
    }
}

/// The pattern text reported in ECR's InvalidParameterException for a bad repository name.
pub const REPOSITORY_NAME_PATTERN: &str =
    "(?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*";

fn is_name_component(c: &str) -> bool {
    let b = c.as_bytes();
    let alnum = |x: u8| x.is_ascii_lowercase() || x.is_ascii_digit();
    if b.is_empty() || !alnum(b[0]) || !alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if alnum(b[i]) {
            i += 1;
            continue;
        }
        // A separator: `.`, `_`, `__` or a run of `-`, always followed by an alphanumeric.
        let start = i;
        match b[i] {
            b'.' => i += 1,
            b'_' => {
                i += 1;
                if i < b.len() && b[i] == b'_' {
                    i += 1;
                }
            }
            b'-' => {
                while i < b.len() && b[i] == b'-' {
                    i += 1;
                }
            }
            _ => return false,
        }
        if i == start || i >= b.len() || !alnum(b[i]) {
            return false;
        }
    }
    true
}

/// ECR's tag pattern `[a-zA-Z0-9-_.]+` (length 1–300 is checked separately).
pub fn is_ecr_tag(tag: &str) -> bool {
    !tag.is_empty()
        && tag
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
}

/// The OCI distribution tag grammar: `[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`.
pub fn is_oci_tag(tag: &str) -> bool {
    let b = tag.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
}

/// ECR's digest pattern `[a-zA-Z0-9-_+.]+:[a-fA-F0-9]+`.
pub fn is_ecr_digest(digest: &str) -> bool {
    match digest.split_once(':') {
        Some((algo, hex)) => {
            !algo.is_empty()
                && algo
                    .bytes()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'+' | b'.'))
                && !hex.is_empty()
                && hex.bytes().all(|c| c.is_ascii_hexdigit())
        }
        None => false,
    }
}

/// ECR's `RegistryId`: exactly twelve digits.
pub fn is_registry_id(id: &str) -> bool {
    id.len() == 12 && id.bytes().all(|c| c.is_ascii_digit())
}

/// ECR's `UploadId`: the UUID shape (any version nibble).
pub fn is_upload_id(id: &str) -> bool {
    let groups: Vec<&str> = id.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, n)| g.len() == n && g.bytes().all(|c| c.is_ascii_hexdigit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repository_names() {
        for ok in [
            "ab",
            "a/b",
            "library/ubuntu",
            "a.b_c__d---e/f0",
            "x-y/z.w",
            "0a",
        ] {
            assert!(is_repository_name(ok), "{ok} should be valid");
        }
        for bad in [
            "", "A", "a//b", "/a", "a/", "a..b", "a___b", "-a", "a-", "a_", "a b", "a:b",
        ] {
            assert!(!is_repository_name(bad), "{bad} should be invalid");
        }
    }

    #[test]
    fn names_ecr_can_hold() {
        assert!(is_repository_name("a"), "valid OCI");
        assert!(ecr_repository_name_problem("a")
            .unwrap()
            .contains("2 to 256"));
        assert!(ecr_repository_name_problem(&"a".repeat(257)).is_some());
        assert_eq!(ecr_repository_name_problem(&"a".repeat(256)), None);
        assert_eq!(ecr_repository_name_problem("ab"), None);
        assert!(ecr_repository_name_problem("AB")
            .unwrap()
            .contains("lowercase"));
    }

    #[test]
    fn tags() {
        assert!(is_ecr_tag("v1.0-rc_1"));
        assert!(is_ecr_tag(".hidden"));
        assert!(!is_ecr_tag("a/b"));
        assert!(!is_ecr_tag(""));
        assert!(is_oci_tag("_latest"));
        assert!(!is_oci_tag(".hidden"));
        assert!(!is_oci_tag(&"a".repeat(129)));
        assert!(is_oci_tag(&"a".repeat(128)));
    }

    #[test]
    fn digests_registry_ids_upload_ids() {
        assert!(is_ecr_digest("sha256:abcDEF0123"));
        assert!(is_ecr_digest("sha256+b64u.x-y_z:00"));
        assert!(!is_ecr_digest("sha256:xyz"));
        assert!(!is_ecr_digest("sha256:"));
        assert!(!is_ecr_digest(":00"));
        assert!(is_registry_id("123456789012"));
        assert!(!is_registry_id("12345678901a"));
        assert!(!is_registry_id("1234567890123"));
        assert!(is_upload_id("6cb64b8a-9378-0e33-2ab1-b780fab8a9e9"));
        assert!(!is_upload_id("6cb64b8a93780e332ab1b780fab8a9e9"));
        assert!(!is_upload_id("6cb64b8a-9378-0e33-2ab1-b780fab8a9eg"));
    }
}
