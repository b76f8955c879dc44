//! The Lua scripts of the upload session store (`super`): each step on an upload is one
//! script, atomic in Redis. `KEYS` are always the upload's record, segment list, lock and busy
//! mark (or the subset named), all under one hash tag; segment keys are built from the
//! record's key (`KEYS[1] .. ':seg:' .. name`). Owns no I/O.

use redis::Script;
use std::sync::LazyLock;

/// A tail of more segments than this is written whole at the next save (a client sending tiny
/// chunks must not make loading a tail cost thousands of keys).
pub const MAX_SEGMENTS: u64 = 32;

/// Lua: call `f` with the key of each tail segment of the upload (`KEYS[1]` record, `KEYS[2]`
/// segment list; segments share the record's hash tag).
const EACH_SEGMENT: &str = r"local function each_segment(f)
            for _, s in ipairs(redis.call('LRANGE', KEYS[2], 0, -1)) do f(KEYS[1] .. ':seg:' .. s) end
          end
          local function expire_all(ttl)
            redis.call('PEXPIRE', KEYS[1], ttl)
            redis.call('PEXPIRE', KEYS[2], ttl)
            each_segment(function(k) redis.call('PEXPIRE', k, ttl) end)
          end
          ";

/// The record's fields, in the order the scripts return them.
const FIELDS: &str = "'repository', 'ecr_upload_id', 'part_size', 'committed', 'received', \
     'version', 'completing', 'hash_state'";

/// `KEYS` record, segments, lock, busy; `ARGV` repository, ECR upload id, part size, ttl ms,
/// lease ms (0: not locked). Version and token 1.
pub(super) static CREATE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        r"{EACH_SEGMENT}
          each_segment(function(k) redis.call('DEL', k) end)
          redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[4])
          redis.call('HSET', KEYS[1], 'repository', ARGV[1], 'ecr_upload_id', ARGV[2],
            'part_size', ARGV[3], 'committed', 0, 'received', 0, 'version', 1, 'fence', 1,
            'completing', '', 'hash_state', '')
          redis.call('PEXPIRE', KEYS[1], ARGV[4])
          if ARGV[5] ~= '0' then
            redis.call('SET', KEYS[3], 1, 'PX', ARGV[5])
            redis.call('SET', KEYS[4], 1, 'PX', ARGV[4])
          end
          return 1"
    ))
});

/// `KEYS` record, segments, lock, busy; `ARGV` lease ms, ttl ms.
pub(super) static BEGIN: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        r"{EACH_SEGMENT}
          if redis.call('EXISTS', KEYS[1]) == 0 then return {{'unknown'}} end
          if redis.call('EXISTS', KEYS[3]) == 1 then return {{'busy'}} end
          if redis.call('EXISTS', KEYS[4]) == 1 then
            each_segment(function(k) redis.call('DEL', k) end)
            redis.call('DEL', KEYS[1], KEYS[2], KEYS[4])
            return {{'abandoned'}}
          end
          local token = redis.call('HINCRBY', KEYS[1], 'fence', 1)
          redis.call('SET', KEYS[3], token, 'PX', ARGV[1])
          redis.call('SET', KEYS[4], token, 'PX', ARGV[2])
          expire_all(ARGV[2])
          local f = redis.call('HMGET', KEYS[1], {FIELDS})
          return {{'locked', tostring(token), f[1], f[2], f[3], f[4], f[5], f[6], f[7], f[8]}}"
    ))
});

/// `KEYS` record, lock, busy.
pub(super) static STATUS: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        r"if redis.call('EXISTS', KEYS[1]) == 0 then return {{'unknown'}} end
          if redis.call('EXISTS', KEYS[2]) == 0 and redis.call('EXISTS', KEYS[3]) == 1 then
            return {{'abandoned'}}
          end
          local f = redis.call('HMGET', KEYS[1], {FIELDS})
          return {{'open', '0', f[1], f[2], f[3], f[4], f[5], f[6], f[7], f[8]}}"
    ))
});

/// `KEYS` record, segments, lock, busy; `ARGV` token, mode (`unchanged`, `replace`, `append`),
/// committed, received, the new segment's name ('' for none: written before, under the token),
/// stored tail length (append), ttl ms, completing ('' for none), the names of segments written
/// during the request that come before the new one (append; space-separated), the hash state
/// that goes with the new tail (opaque).
pub(super) static END: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        r"{EACH_SEGMENT}
          if redis.call('GET', KEYS[3]) ~= ARGV[1] then return 'fenced' end
          if ARGV[2] == 'append' then
            local f = redis.call('HMGET', KEYS[1], 'committed', 'received')
            local adding = (ARGV[5] ~= '' and 1 or 0)
            for _ in string.gmatch(ARGV[9], '%S+') do adding = adding + 1 end
            if tonumber(f[2]) - tonumber(f[1]) ~= tonumber(ARGV[6])
              or redis.call('LLEN', KEYS[2]) + adding > {MAX_SEGMENTS} then
              return 'mismatch'
            end
          end
          if ARGV[2] == 'replace' then
            each_segment(function(k) if k ~= KEYS[1] .. ':seg:' .. ARGV[5] then redis.call('DEL', k) end end)
            redis.call('DEL', KEYS[2])
          end
          if ARGV[2] ~= 'unchanged' then
            for name in string.gmatch(ARGV[9], '%S+') do redis.call('RPUSH', KEYS[2], name) end
            if ARGV[5] ~= '' then redis.call('RPUSH', KEYS[2], ARGV[5]) end
            redis.call('HSET', KEYS[1], 'committed', ARGV[3], 'received', ARGV[4],
              'version', ARGV[1], 'completing', ARGV[8], 'hash_state', ARGV[10])
          end
          expire_all(ARGV[7])
          redis.call('DEL', KEYS[3], KEYS[4])
          return 'saved'"
    ))
});

/// `KEYS` record, segments, lock, busy; `ARGV` token, lease ms, ttl ms.
pub(super) static RENEW: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        r"{EACH_SEGMENT}
          if redis.call('GET', KEYS[3]) ~= ARGV[1] then return 0 end
          redis.call('PEXPIRE', KEYS[3], ARGV[2])
          redis.call('PEXPIRE', KEYS[4], ARGV[3])
          expire_all(ARGV[3])
          return 1"
    ))
});

/// `KEYS` record, segments, lock, busy; `ARGV` (optional) the token that must hold the lock
/// (0 returned, nothing deleted, when it does not).
pub(super) static DELETE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        r"{EACH_SEGMENT}
          if ARGV[1] ~= nil and redis.call('GET', KEYS[3]) ~= ARGV[1] then return 0 end
          each_segment(function(k) redis.call('DEL', k) end)
          return redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[4])"
    ))
});
