//! Pushes through an ECR that throttles, fails and drops connections (the emulator's fault
//! injection, deterministic per seed). The SDK retries; a retried part or completion whose first
//! attempt had landed (the answer was lost) counts as done. Every push still ends with exactly
//! the client's bytes in ECR, in exact parts.

use crate::support::*;
use crate::uploads::{assert_layers_in_ecr, push_blob};
use ecr_proxy::emulator::faults::Fault;

const PART: u64 = 10 * MIB as u64;

#[tokio::test]
async fn throttled_failed_and_dropped_parts_are_retried_to_the_same_bytes() {
    let s = Stack::start_faulty(&[], "UploadLayerPart:throttle=0.15,server=0.1,drop=0.15", 7).await;
    let bytes = data(40, 6 * PART as usize + 12_345);
    let d = push_blob(&s, "faults/parts", &bytes).await;
    let calls = s.emu.fault_calls("UploadLayerPart");
    assert!(
        calls > 7,
        "faults were injected and retried: {calls} calls for 7 parts"
    );
    let parts = s.emu.layer_parts("faults/parts", &d).expect("layer in ECR");
    assert_eq!(parts.len(), 7);
    assert!(parts[..6].iter().all(|p| *p == PART), "{parts:?}");
    assert_layers_in_ecr(&s, "faults/parts", &[&bytes]).await;
}

#[tokio::test]
async fn a_completion_whose_answer_was_lost_is_success() {
    // Every CompleteLayerUpload is carried out and its connection then dropped: the SDK's retry
    // finds the upload gone, and the layer in the repository.
    let s = Stack::start_faulty(&[], "CompleteLayerUpload:drop=1", 1).await;
    let bytes = data(41, PART as usize + 5);
    push_blob(&s, "faults/complete", &bytes).await;
    assert!(
        s.emu
            .faults_injected("CompleteLayerUpload", Fault::DropAfter)
            >= 2,
        "retried"
    );
    assert_layers_in_ecr(&s, "faults/complete", &[&bytes]).await;
}
