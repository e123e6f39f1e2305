//! The Lua scripts the shared state runs in Redis, each one atomic, with the time taken
//! from Redis (`TIME`) so that the instances' clocks never matter.
//!
//! Indexes are sorted sets scored by the expiry (Redis milliseconds) of what they point
//! at: members are pruned as they expire, and each index key expires with its
//! longest-lived member. Registry entries carry their TTL; an index is a hint that
//! readers check against them. Running verdicts live in their index (the score is their
//! end) and a hash of their JSON beside it, pruned together.
//!
//! Every key a script touches comes in `KEYS` (none is built inside a script), and all of
//! them carry the namespace's hash tag: one slot, as a Redis Cluster requires.

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

/// Removes the verdicts that have ended (from the index `KEYS[1]` and the JSON hash
/// `KEYS[2]`), at Redis time `now`.
const PRUNE: &str = r#"
local function prune(now)
  local ended = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now)
  for _, name in ipairs(ended) do redis.call('HDEL', KEYS[2], name) end
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
end
"#;

/// Keeps a verdict for its duration (never shortening a longer one running under the
/// same name), and announces it.
///
/// `KEYS`: the verdict index, the verdict JSON hash. `ARGV`: the verdict's name, the JSON,
/// the duration in ms, the channel. Returns how many subscribers (of the node that ran
/// it) heard it.
const ANNOUNCE: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ms = tonumber(ARGV[3])
local running = tonumber(redis.call('ZSCORE', KEYS[1], ARGV[1]))
if not running or running < now + ms then
  redis.call('ZADD', KEYS[1], now + ms, ARGV[1])
  redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
end
prune(now)
for _, key in ipairs(KEYS) do
  if redis.call('PTTL', key) < ms then redis.call('PEXPIRE', key, ms) end
end
return redis.call('PUBLISH', ARGV[4], ARGV[2])
"#;

/// Ends a running verdict and announces the end.
///
/// `KEYS`: the verdict index, the verdict JSON hash. `ARGV`: the verdict's name, the JSON,
/// the channel.
const RETRACT: &str = r#"
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
return redis.call('PUBLISH', ARGV[3], ARGV[2])
"#;

/// Reads up to `ARGV[1]` running verdicts, the longest-lasting first: a flat list of
/// JSON and milliseconds left.
///
/// `KEYS`: the verdict index, the verdict JSON hash.
const POLL: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
prune(now)
local running = redis.call('ZREVRANGE', KEYS[1], 0, tonumber(ARGV[1]) - 1, 'WITHSCORES')
local out = {}
for i = 1, #running, 2 do
  local json = redis.call('HGET', KEYS[2], running[i])
  local left = math.floor(tonumber(running[i + 1]) - now)
  if json and left > 0 then
    table.insert(out, json)
    table.insert(out, left)
  end
end
return out
"#;

pub(crate) static REGISTER_SCRIPT: LazyLock<Script> = LazyLock::new(|| Script::new(REGISTER));
pub(crate) static WITHDRAW_SCRIPT: LazyLock<Script> = LazyLock::new(|| Script::new(WITHDRAW));
pub(crate) static ANNOUNCE_SCRIPT: LazyLock<Script> = LazyLock::new(|| Script::new(&format!("{PRUNE}{ANNOUNCE}")));
pub(crate) static RETRACT_SCRIPT: LazyLock<Script> = LazyLock::new(|| Script::new(RETRACT));
pub(crate) static POLL_SCRIPT: LazyLock<Script> = LazyLock::new(|| Script::new(&format!("{PRUNE}{POLL}")));
