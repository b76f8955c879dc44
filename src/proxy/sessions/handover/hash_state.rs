//! The SigV4 hash state that goes to the session store with an upload's tail (the record's
//! `hash_state`), so that a replica taking the upload over goes on hashing the tail's part body
//! instead of hashing the tail again: written by a save, read back on a takeover. Knows nothing
//! of Redis.

use crate::ecr::Midstate;
use crate::proxy::sessions::writer::Writer;
use crate::shared::UploadRecord;

/// The hash state a save under `token` stores with the whole tail, so that the next replica
/// goes on from it: the tail's part body's SigV4 midstate, tagged with the token (the record's
/// `version` after that save).
pub(super) fn to_store(w: &Writer, token: u64) -> String {
    w.tail_midstate()
        .map(|m| format!("{token}@{}", m.to_text()))
        .unwrap_or_default()
}

/// The midstate a record's `hash_state` holds, if the save that stored the tail stored it too:
/// every save that changes the tail sets `version`, so a state left by an earlier save (a later
/// one wrote none: an older replica) is not used. `PartBody::resume` also checks its length.
pub(super) fn from_store(record: &UploadRecord) -> Option<Midstate> {
    let (by, mid) = record.hash_state.split_once('@')?;
    (by.parse() == Ok(record.version))
        .then(|| Midstate::parse(mid))
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ecr::PartBody;

    #[test]
    fn a_saved_hash_state_is_used_only_by_the_save_that_stored_it() {
        let mut body = PartBody::new(bytes::BytesMut::zeroed(PartBody::capacity_for(64)));
        body.push(b"twelve bytes");
        let mid = body.midstate();
        let record = |version, hash_state: String| UploadRecord {
            repository: "r".into(),
            ecr_upload_id: "u".into(),
            part_size: 64,
            committed: 0,
            received: 12,
            version,
            completing: None,
            hash_state,
        };
        let text = format!("7@{}", mid.to_text());
        assert_eq!(from_store(&record(7, text.clone())), Some(mid));
        // Stored by the save of token 7, found with a record saved by token 9 (which wrote no
        // state: an older replica), even at the same length.
        assert_eq!(from_store(&record(9, text)), None);
        assert_eq!(from_store(&record(7, mid.to_text())), None);
        assert_eq!(from_store(&record(7, String::new())), None);
        assert_eq!(from_store(&record(7, "7@garbage".into())), None);
    }
}
