//! The Lua scripts the shared state runs in Redis, each one atomic, with the time taken
//! from Redis (`TIME`) so that the instances' clocks never matter.
//!
//! Indexes are sorted sets scored by the expiry (Redis milliseconds) of what they point
//! at: members are pruned as they expire, and each index key expires with its
//! longest-lived member. The entries and verdicts themselves carry their TTL; an index
//! is a hint that readers check against them.

use std::sync::LazyLock;

use harvester_redis::redis::Script;

/// Writes registry entries and indexes them.
///
/// `ARGV[1]`: TTL in ms. Then per entry, 8 keys (entry, all, region, provider, and the
/// four tier indexes best first) and 5 arguments (id, JSON, has region, has provider,
/// tier number 1–4). An entry goes into its tier's index and leaves the other three.
pub(crate) const REGISTER: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[1])
local expires = now + ttl
local function index(key, id)
  redis.call('ZADD', key, 'GT', expires, id)
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
  if redis.call('PTTL', key) < ttl then redis.call('PEXPIRE', key, ttl) end
end
local n = (#ARGV - 1) / 5
for i = 0, n - 1 do
  local k, a = i * 8, 1 + i * 5
  local id = ARGV[a + 1]
  redis.call('SET', KEYS[k + 1], ARGV[a + 2], 'PX', ttl)
  index(KEYS[k + 2], id)
  if ARGV[a + 3] == '1' then index(KEYS[k + 3], id) end
  if ARGV[a + 4] == '1' then index(KEYS[k + 4], id) end
  local tier = tonumber(ARGV[a + 5])
  for j = 1, 4 do
    if j == tier then index(KEYS[k + 4 + j], id) else redis.call('ZREM', KEYS[k + 4 + j], id) end
  end
end
return n
"#;

/// Removes registry entries written by `ARGV[1]` (entries another instance rewrote since
/// are theirs now, and stay).
///
/// Per entry, 8 keys as in [`REGISTER`] and 1 argument (id). Returns how many it removed.
pub(crate) const WITHDRAW: &str = r#"
local removed = 0
local n = (#ARGV - 1)
for i = 0, n - 1 do
  local k = i * 8
  local id = ARGV[2 + i]
  local json = redis.call('GET', KEYS[k + 1])
  if json then
    local ok, entry = pcall(cjson.decode, json)
    if ok and type(entry) == 'table' and entry['owner'] == ARGV[1] then
      redis.call('DEL', KEYS[k + 1])
      for j = 2, 8 do redis.call('ZREM', KEYS[k + j], id) end
      removed = removed + 1
    end
  end
end
return removed
"#;

/// Keeps a verdict under its key for its duration (never shortening a longer one),
/// indexes it, and announces it.
///
/// `KEYS`: the verdict key, the verdict index. `ARGV`: the JSON, the duration in ms, the
/// channel. Returns how many subscribers heard it.
pub(crate) const ANNOUNCE: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ms = tonumber(ARGV[2])
if redis.call('PTTL', KEYS[1]) < ms then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ms)
  redis.call('ZADD', KEYS[2], 'GT', now + ms, KEYS[1])
  if redis.call('PTTL', KEYS[2]) < ms then redis.call('PEXPIRE', KEYS[2], ms) end
end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
return redis.call('PUBLISH', ARGV[3], ARGV[1])
"#;

/// Ends a running verdict and announces the end.
///
/// `KEYS`: the verdict key, the verdict index. `ARGV`: the JSON, the channel.
pub(crate) const RETRACT: &str = r#"
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], KEYS[1])
return redis.call('PUBLISH', ARGV[2], ARGV[1])
"#;

/// Reads up to `ARGV[1]` running verdicts, the longest-lasting first: a flat list of
/// JSON and milliseconds left.
///
/// `KEYS`: the verdict index.
pub(crate) const POLL: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local keys = redis.call('ZREVRANGE', KEYS[1], 0, tonumber(ARGV[1]) - 1)
local out = {}
for _, key in ipairs(keys) do
  local json = redis.call('GET', key)
  local left = redis.call('PTTL', key)
  if json and left > 0 then
    table.insert(out, json)
    table.insert(out, left)
  end
end
return out
"#;

pub(crate) static REGISTER_SCRIPT: LazyLock<Script> = LazyLock::new(|| Script::new(REGISTER));
pub(crate) static WITHDRAW_SCRIPT: LazyLock<Script> = LazyLock::new(|| Script::new(WITHDRAW));
pub(crate) static ANNOUNCE_SCRIPT: LazyLock<Script> = LazyLock::new(|| Script::new(ANNOUNCE));
pub(crate) static RETRACT_SCRIPT: LazyLock<Script> = LazyLock::new(|| Script::new(RETRACT));
pub(crate) static POLL_SCRIPT: LazyLock<Script> = LazyLock::new(|| Script::new(POLL));
