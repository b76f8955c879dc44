//! Tests of input reading: ECR's validation messages for members, lengths, lists and names.

use super::*;

fn input(s: &str) -> Input {
    Input::parse(s.as_bytes()).unwrap()
}

#[test]
fn required_and_patterns() {
    let e = input("{}").repository_name().unwrap_err();
    assert_eq!(e.code(), "InvalidParameterException");
    assert!(e
        .to_string()
        .contains("'repositoryName' failed to satisfy constraint: 'Member must not be null'"));
    let e = input(r#"{"repositoryName":"a"}"#)
        .repository_name()
        .unwrap_err();
    assert!(e.to_string().contains("greater than or equal to 2"));
    let e = input(r#"{"repositoryName":"Bad"}"#)
        .repository_name()
        .unwrap_err();
    assert!(e.to_string().contains("must satisfy regular expression"));
    assert_eq!(
        input(r#"{"repositoryName":"ok/name"}"#)
            .repository_name()
            .unwrap(),
        "ok/name"
    );
}

#[test]
fn ranges_lists_and_types() {
    assert!(input(r#"{"maxResults":0}"#).max_results().is_err());
    assert!(input(r#"{"maxResults":1001}"#).max_results().is_err());
    assert_eq!(
        input(r#"{"maxResults":1000}"#).max_results().unwrap(),
        Some(1000)
    );
    assert!(input(r#"{"l":[]}"#).list_sized("l", 1, 100).is_err());
    let hundred_one = format!("{{\"l\":[{}]}}", vec!["1"; 101].join(","));
    assert!(input(&hundred_one).list_sized("l", 1, 100).is_err());
    assert_eq!(
        input(r#"{"s":5}"#).opt_str("s").unwrap_err().code(),
        "SerializationException"
    );
    assert_eq!(
        Input::parse(b"[1]").err().unwrap().code(),
        "SerializationException"
    );
    assert!(Input::parse(b"").is_ok());
    assert!(input(r#"{"registryId":"12"}"#).registry_id().is_err());
}
