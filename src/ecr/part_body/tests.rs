//! Tests of the part body: the JSON ECR expects whatever the pieces, its SigV4 hash, and the
//! buffer coming back for reuse.

use super::*;
use sha2::{Digest as _, Sha256};

fn data(n: usize) -> Vec<u8> {
    (0..n as u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect()
}

/// The body, its members and its hash, for `raw` fed in pieces of the given sizes (cycled).
fn build(raw: &[u8], pieces: &[usize], registry: Option<&str>) -> (serde_json::Value, EncodedPart) {
    let mut body = PartBody::new(BytesMut::zeroed(PartBody::capacity_for(raw.len() as u64)));
    let mut rest = raw;
    for &n in pieces.iter().cycle() {
        if rest.is_empty() {
            break;
        }
        let (piece, tail) = rest.split_at(n.min(rest.len()));
        body.push(piece);
        rest = tail;
    }
    assert_eq!(body.raw_len(), raw.len() as u64);
    let part = body.finish(registry, "team/a\"b", "u-1", 10);
    (
        serde_json::from_slice(&part.body).expect("valid JSON"),
        part,
    )
}

#[test]
fn the_body_is_the_json_ecr_expects_whatever_the_pieces() {
    let raw = data(100_003);
    for pieces in [
        &[100_003][..],
        &[1],
        &[2],
        &[4],
        &[1, 2, 5, 49_152, 7],
        &[65_537],
    ] {
        let (v, part) = build(&raw, pieces, Some("123456789012"));
        assert_eq!(v["registryId"], "123456789012", "pieces {pieces:?}");
        assert_eq!(v["repositoryName"], "team/a\"b");
        assert_eq!(v["uploadId"], "u-1");
        assert_eq!(v["partFirstByte"], 10);
        assert_eq!(v["partLastByte"], 100_012);
        assert_eq!((part.first, part.last), (10, 100_012));
        let blob = base64_simd::STANDARD
            .decode_to_vec(v["layerPartBlob"].as_str().unwrap())
            .unwrap();
        assert_eq!(blob, raw, "pieces {pieces:?}");
        assert_eq!(part.sha256_hex, hex::encode(Sha256::digest(&part.body)));
    }
}

#[test]
fn short_parts_are_padded_and_the_registry_is_optional() {
    for (raw, b64) in [(&b"x"[..], "eA=="), (b"xy", "eHk="), (b"xyz", "eHl6")] {
        let (v, part) = build(raw, &[1], None);
        assert!(v.get("registryId").is_none());
        assert_eq!(v["layerPartBlob"], b64);
        assert_eq!(part.last, 10 + raw.len() as u64 - 1);
    }
    let part = PartBody::of(None, "r", "u", b"{}");
    let v: serde_json::Value = serde_json::from_slice(&part.body).unwrap();
    assert_eq!(
        (v["layerPartBlob"].as_str(), v["partLastByte"].as_u64()),
        (Some("e30="), Some(1))
    );
}

#[test]
fn a_long_escaped_name_grows_the_buffer() {
    let name = "\"".repeat(300);
    let mut body = PartBody::new(BytesMut::zeroed(PartBody::capacity_for(3)));
    body.push(b"abc");
    let part = body.finish(Some(&name), &name, "u", 0);
    let v: serde_json::Value = serde_json::from_slice(&part.body).unwrap();
    assert_eq!(v["repositoryName"].as_str(), Some(name.as_str()));
    assert_eq!(part.sha256_hex, hex::encode(Sha256::digest(&part.body)));
}

#[test]
fn the_buffer_comes_back_for_the_next_part_without_a_copy() {
    let raw = data(30_000);
    let cap = PartBody::capacity_for(raw.len() as u64);
    let (_, part) = build(&raw, &[30_000], None);
    let ptr = part.body.as_ptr();
    let again = EncodedPart::reclaim(part.body).expect("nothing else holds it");
    assert_eq!((again.as_ptr(), again.capacity()), (ptr, cap));
    // A second body written into it is complete and correct.
    let mut body = PartBody::new(again);
    body.push(b"hello");
    let part = body.finish(None, "r", "u", 0);
    assert_eq!(part.body.as_ptr(), ptr);
    let v: serde_json::Value = serde_json::from_slice(&part.body).unwrap();
    assert_eq!(v["layerPartBlob"], "aGVsbG8=");
    // Still shared (a retry's copy in flight): not reclaimed.
    let other = part.body.clone();
    assert!(EncodedPart::reclaim(part.body).is_none());
    drop(other);
}

#[test]
fn a_parked_body_goes_on_where_it_stopped() {
    let raw = data(70_001);
    let (whole, _) = build(&raw, &[70_001], None);
    for cut in [0usize, 1, 2, 3, 4, 5, 49_153, 70_000] {
        let mut body = PartBody::new(BytesMut::zeroed(PartBody::capacity_for(70_001)));
        body.push(&raw[..cut]);
        let (buf, parked) = body.park();
        let saved = buf[..parked.len()].to_vec();
        let mut fresh = BytesMut::zeroed(PartBody::capacity_for(70_001));
        fresh[..saved.len()].copy_from_slice(&saved);
        let mut body = parked.restore(fresh);
        body.push(&raw[cut..]);
        let part = body.finish(None, "team/a\"b", "u-1", 10);
        let v: serde_json::Value = serde_json::from_slice(&part.body).unwrap();
        assert_eq!(v, whole, "cut at {cut}");
        assert_eq!(part.sha256_hex, hex::encode(Sha256::digest(&part.body)));
    }
}

#[test]
fn a_sent_part_rewinds_to_any_raw_length() {
    let raw = data(10_007);
    for keep in [0u64, 1, 2, 3, 4, 5, 6, 9_998, 10_006] {
        let (_, part) = build(&raw, &[10_007], None);
        let buf = EncodedPart::reclaim(part.body).expect("sole owner");
        let mut body = PartBody::rewind(buf, keep);
        assert_eq!(body.raw_len(), keep);
        body.push(&raw[keep as usize..]);
        let (want, _) = build(&raw, &[3], None);
        let part = body.finish(None, "team/a\"b", "u-1", 10);
        let v: serde_json::Value = serde_json::from_slice(&part.body).unwrap();
        assert_eq!(v, want, "rewound to {keep}");
        assert_eq!(part.sha256_hex, hex::encode(Sha256::digest(&part.body)));
    }
}

#[test]
fn the_raw_bytes_come_back_from_any_offset_whatever_the_pieces() {
    let raw = data(1000);
    for pieces in [&[1usize][..], &[2], &[7, 5], &[500]] {
        for len in [0usize, 1, 2, 3, 4, 100, 998, 999, 1000] {
            let mut body = PartBody::new(BytesMut::zeroed(PartBody::capacity_for(1000)));
            let mut rest = &raw[..len];
            for &n in pieces.iter().cycle() {
                if rest.is_empty() {
                    break;
                }
                let (piece, tail) = rest.split_at(n.min(rest.len()));
                body.push(piece);
                rest = tail;
            }
            let froms = [0u64, 1, 2, 3, 5, len as u64 / 2, len as u64, len as u64 + 3];
            for from in froms {
                let want = &raw[(from as usize).min(len)..len];
                assert_eq!(
                    body.raw_from(from),
                    want,
                    "pieces {pieces:?} len {len} from {from}"
                );
            }
            // The same from a parked body and its saved bytes.
            let (buf, parked) = body.park();
            for from in froms {
                let want = &raw[(from as usize).min(len)..len];
                assert_eq!(
                    parked.raw_from(&buf, from),
                    want,
                    "parked, len {len} from {from}"
                );
            }
        }
    }
}

#[test]
fn a_body_resumed_from_raw_bytes_and_its_midstate_is_the_same_body() {
    let raw = data(300_007);
    let (_, whole) = build(&raw, &[300_007], None);
    for cut in [0, 1, 2, 3, 64, 65_537, 200_000, 300_006] {
        let mut first = PartBody::new(BytesMut::zeroed(PartBody::capacity_for(raw.len() as u64)));
        first.push(&raw[..cut]);
        let mid = Midstate::parse(&first.midstate().to_text()).expect("round trip");
        let saved = first.raw_from(0);
        assert_eq!(saved, &raw[..cut]);
        // The saved bytes come back in segments of any size, with or without the midstate.
        let segments: Vec<&[u8]> = saved.chunks(7_001).collect();
        for m in [Some(&mid), None] {
            let buf = BytesMut::zeroed(PartBody::capacity_for(raw.len() as u64));
            let (mut again, resumed) = PartBody::resume(buf, &segments, m);
            assert_eq!(resumed, m.is_some());
            assert_eq!(again.raw_len(), cut as u64);
            again.push(&raw[cut..]);
            let part = again.finish(None, "team/a\"b", "u-1", 10);
            assert_eq!(part.body, whole.body, "cut {cut}");
            assert_eq!(
                part.sha256_hex,
                whole.sha256_hex,
                "cut {cut}, midstate {}",
                m.is_some()
            );
            assert_eq!(part.sha256_hex, hex::encode(Sha256::digest(&part.body)));
        }
    }
}

#[test]
fn a_midstate_of_another_length_is_not_trusted() {
    let raw = data(5_000);
    let (_, whole) = build(&raw, &[5_000], None);
    let mut other = PartBody::new(BytesMut::zeroed(PartBody::capacity_for(5_000)));
    other.push(&raw[..999]);
    let stale = other.midstate();
    let buf = BytesMut::zeroed(PartBody::capacity_for(5_000));
    let (mut again, resumed) = PartBody::resume(buf, &[&raw[..3_000]], Some(&stale));
    assert!(!resumed);
    again.push(&raw[3_000..]);
    let part = again.finish(None, "team/a\"b", "u-1", 10);
    assert_eq!(part.sha256_hex, whole.sha256_hex);
}
