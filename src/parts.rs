//! ECR's layer-part facts and what a part costs the proxy: the one place that knows part sizes
//! (ECR's announced `partSize`, its 5–20 MiB bounds) and the memory a part takes while its
//! UploadLayerPart body is written. The proxy's sessions and budget, its configuration and the
//! emulator all read these; this module imports nothing of theirs.

const MIB: u64 = 1024 * 1024;

/// The `partSize` ECR announces in InitiateLayerUpload: 10 MiB.
pub const ECR_PART_SIZE: u64 = 10 * MIB;
/// The smallest part ECR accepts (all but the last part): 5 MiB.
pub const MIN_PART_SIZE: u64 = 5 * MIB;
/// The largest part ECR accepts: 20 MiB.
pub const MAX_PART_SIZE: u64 = 20 * MIB;

/// The part size an upload uses: the configured one, else what ECR announced, else ECR's default.
pub fn choose(configured: Option<u64>, announced: u64) -> u64 {
    configured.unwrap_or(if announced > 0 {
        announced
    } else {
        ECR_PART_SIZE
    })
}

/// `{"layerPartBlob":"` opens every UploadLayerPart body.
pub const BODY_PREFIX: &[u8] = b"{\"layerPartBlob\":\"";
/// Room for the members after the blob (`partFirstByte` … `uploadId`); a longer suffix (an
/// escaped 256-character name) grows the buffer.
pub const BODY_SUFFIX_ROOM: usize = 1024;

/// Bytes of the UploadLayerPart request body of a `part_size` part: the part base64-encoded
/// inside its JSON. This is what a part costs while it exists (the raw bytes are never kept).
pub fn body_capacity(part_size: u64) -> usize {
    BODY_PREFIX.len() + (part_size as usize).div_ceil(3) * 4 + BODY_SUFFIX_ROOM
}

/// `body_capacity` in the budget's terms.
pub fn part_cost(part_size: u64) -> u64 {
    body_capacity(part_size) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ten_mib_part_costs_its_base64_body() {
        assert_eq!(part_cost(ECR_PART_SIZE), 18 + 13_981_016 + 1024);
        assert_eq!(choose(None, 0), ECR_PART_SIZE);
        assert_eq!(choose(None, 7 * MIB), 7 * MIB);
        assert_eq!(choose(Some(5 * MIB), 7 * MIB), 5 * MIB);
    }
}
