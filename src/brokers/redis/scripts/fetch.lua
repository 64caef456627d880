--[[
fetch: takes up to MAX ready messages from one or more queues AND records each in kombu's
`unacked` hash and `unacked_index` zset, in one atomic step, so a consumer killed at any instant
loses nothing: a message is either still on its list or held in `unacked` (restored after its lease).

Wake lists: emptied when the queues turned out empty (fewer taken than asked; stale tokens would
only cause empty fetches), and given one token when MAX was reached with messages left, so another
idle consumer wakes up ("pass the baton").

Serving order is kombu's: priority step 0 of every queue (in the order given, which the caller
rotates for fairness), then step 3, 6, 9; within a list, the right end (oldest) first.

The unacked value is kombu's `[envelope, exchange, routing_key]` JSON with the envelope exactly as
it was on the list, so a Python worker's restore (kombu QoS.restore_by_tag) can put it back; the
exchange is always "" and the routing key the queue it was taken from, so a restore (kombu's or
ours) puts it back on that very queue. A
message whose envelope cannot be read (not JSON, no properties.delivery_tag) gets a synthetic tag
and is stored as `["<raw as a JSON string>", "", queue]`; the worker dead-letters it at once.

KEYS[1]           unacked (hash: delivery_tag -> [envelope, exchange, routing_key])
KEYS[2]           unacked_index (zset: delivery_tag -> lease score, see ARGV[1])
KEYS[3]           deliveries (hash: delivery_tag -> deliveries before this one; Celeriac's)
KEYS[4+5(q-1)..]  for queue q: its lists for steps 0, 3, 6, 9, then its wake list
ARGV[1]           lease offset (s): the lease minus kombu's visibility_timeout. The unacked_index
                  score is the server's TIME when the script runs plus this, so kombu's rule "restore
                  when score < now - visibility_timeout" fires when the lease ends, however long the
                  call waited to run (behind a BLPOP, or re-sent after a reconnect)
ARGV[2]           MAX messages to take
ARGV[3]           Q, the number of queues
ARGV[4]           prefix for synthetic tags of unreadable messages
ARGV[4+q]         name of queue q as a JSON string (the routing key in the unacked value)
ARGV[5+Q]         S, the number of acks riding along (0 for none)
ARGV[6+Q..5+Q+S]  delivery tags to settle first, exactly as settle.lua does (the consumer hands the
                  acks of the moment to its next fetch, so a busy worker needs one round trip per
                  batch, not two)
Returns           flat array: how many of the S tags were still held, then for each message, queue
                  number q, envelope, delivery_tag, deliveries before this one (0 on first delivery)
]]
local now = redis.call('TIME')
local score = string.format('%.3f', tonumber(now[1]) + tonumber(now[2]) / 1000000 + tonumber(ARGV[1]))
local max = tonumber(ARGV[2])
local nq = tonumber(ARGV[3])
local ns = tonumber(ARGV[5 + nq])
local out = {0}
if ns > 0 then
  out[1] = redis.call('HDEL', KEYS[1], unpack(ARGV, 6 + nq, 5 + nq + ns))
  redis.call('ZREM', KEYS[2], unpack(ARGV, 6 + nq, 5 + nq + ns))
  redis.call('HDEL', KEYS[3], unpack(ARGV, 6 + nq, 5 + nq + ns))
end
local got = 0

local hset = {}
local zadd = {}
local tags = {}

local function track(q, raw)
  local tag, value
  -- Fast path, no JSON parsing: kombu (and Celeriac) write `"delivery_tag": "<tag>"}}` last.
  local n = #raw
  local at = string.find(raw, '"delivery_tag": "', -120, true)
  if at and string.sub(raw, n - 2) == '"}}' then
    local close = string.find(raw, '"', at + 17, true)
    if close == n - 2 then
      tag = string.sub(raw, at + 17, close - 1)
      if string.find(tag, '\\', 1, true) then tag = nil end
    end
  end
  if tag then
    -- The message goes back where it was taken from: the default exchange, its queue as routing key.
    value = '[' .. raw .. ', "", ' .. ARGV[4 + q] .. ']'
  else
    local ok, env = pcall(cjson.decode, raw)
    local props = ok and type(env) == 'table' and env.properties
    if type(props) == 'table' and type(props.delivery_tag) == 'string' then
      tag = props.delivery_tag
      value = '[' .. raw .. ', "", ' .. ARGV[4 + q] .. ']'
    else
      tag = ARGV[4] .. redis.call('HINCRBY', KEYS[3], '__seq__', 1)
      value = '[' .. cjson.encode(raw) .. ', "", ' .. ARGV[4 + q] .. ']'
    end
  end
  hset[#hset + 1] = tag
  hset[#hset + 1] = value
  zadd[#zadd + 1] = score
  zadd[#zadd + 1] = tag
  tags[#tags + 1] = tag
  out[#out + 1] = q
  out[#out + 1] = raw
  out[#out + 1] = tag
  out[#out + 1] = 0
end

for step = 1, 4 do
  for q = 1, nq do
    if got >= max then break end
    local items = redis.call('RPOP', KEYS[3 + 5 * (q - 1) + step], max - got)
    if items then
      for _, raw in ipairs(items) do
        track(q, raw)
      end
      got = got + #items
    end
  end
end

if got > 0 then
  -- One command each for the whole batch.
  redis.call('HSET', KEYS[1], unpack(hset))
  redis.call('ZADD', KEYS[2], unpack(zadd))
  local before = redis.call('HMGET', KEYS[3], unpack(tags))
  for i = 1, got do
    out[1 + 4 * i] = before[i] or 0
  end
end

-- Took less than asked: the queues are empty, stale wake tokens are useless.
if got < max then
  for q = 1, nq do
    redis.call('DEL', KEYS[3 + 5 * q])
  end
end

-- Pass the baton: if we filled MAX and a queue still holds messages, wake another idle consumer.
if got >= max then
  for q = 1, nq do
    local base = 3 + 5 * (q - 1)
    local left = 0
    for step = 1, 4 do
      left = left + redis.call('LLEN', KEYS[base + step])
    end
    if left > 0 and redis.call('LLEN', KEYS[base + 5]) == 0 then
      redis.call('LPUSH', KEYS[base + 5], '1')
    end
  end
end
return out
