//! The emulator against botocore's ECR model: for every operation the emulator implements (found
//! by asking it), the model's valid input must not be refused as invalid, and every input that
//! breaks one constraint (see `model`) must get the exception ECR gives for it, with status 400.
//! New drift (a constraint botocore adds, an operation the emulator gains) shows up by itself.
//! Without botocore the test prints a note and passes, except under CI=true where it fails.

use crate::model::{self, Model};
use crate::support::Env;
use crate::wire::api_post;
use serde_json::Value;

const CREDS: Option<(&str, &str)> = Some(("test", "test"));

/// The exception ECR answers a broken model constraint with: InvalidParameterException, in
/// ECR's `Invalid parameter at '<member>' failed to satisfy constraint: '…'` form (see
/// `../shared/reference/ecr-api.md` §1). ListImageReferrers also lists ValidationException in
/// its errors; nothing shows ECR using it for input constraints, so the same rule holds there.
fn expected_exception(_op: &str) -> &'static str {
    "InvalidParameterException"
}

/// Codes that mean "your input is malformed": a valid input must get none of them.
const INPUT_ERRORS: [&str; 3] = [
    "InvalidParameterException",
    "ValidationException",
    "SerializationException",
];

fn model_or_skip() -> Option<Model> {
    match model::load() {
        Ok(m) => Some(m),
        Err(why) if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("botocore's ECR model is needed under CI=true: {why} (install the AWS CLI v1 with `python3 -m pip install awscli`; tests/run does)")
        }
        Err(why) => {
            crate::support::skipped(&format!("botocore's ECR model not installed: {why}"));
            None
        }
    }
}

async fn call(env: &Env, op: &str, input: &Value) -> (u16, String, String) {
    let resp = api_post(&env.endpoint(), op, &input.to_string(), CREDS).await;
    let body: Value = serde_json::from_slice(&resp.body).unwrap_or(Value::Null);
    let code = body["__type"].as_str().unwrap_or("").to_string();
    let message = body["message"].as_str().unwrap_or("").to_string();
    (resp.status, code, message)
}

#[tokio::test]
async fn every_model_constraint_gets_ecrs_exception() {
    let Some(model) = model_or_skip() else {
        return;
    };
    let env = Env::start().await;
    env.repo("model-check").await;
    let mut implemented = Vec::new();
    for op in model.operations() {
        let (_, code, _) = call(&env, &op, &serde_json::json!({})).await;
        if code != "UnknownOperationException" {
            implemented.push(op);
        }
    }
    assert!(
        implemented.len() >= 15,
        "the emulator answers only {implemented:?}"
    );
    let (mut checks, mut mismatches) = (0, Vec::new());
    for op in &implemented {
        let valid = model.valid_input(op);
        let (status, code, message) = call(&env, op, &valid).await;
        assert!(
            !INPUT_ERRORS.contains(&code.as_str()),
            "{op}: the model's valid input {valid} was refused ({status} {code}: {message})"
        );
        let want = expected_exception(op);
        for case in model.broken_inputs(op) {
            checks += 1;
            let (status, code, message) = call(&env, op, &case.input).await;
            if status != 400 || code != want {
                mismatches.push(format!(
                    "{op} {}: got {status} {code} ({message}), want 400 {want}",
                    case.label
                ));
            }
        }
    }
    eprintln!(
        "botocore {}: {} operations, {checks} constraint checks, {} match",
        model.botocore_version,
        implemented.len(),
        checks - mismatches.len()
    );
    assert!(checks >= 100, "only {checks} checks were generated");
    assert!(
        mismatches.is_empty(),
        "{} of {checks} checks differ from ECR:\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
}
