--[[
restore: puts one unacked message whose lease ran out back on its queue(s), at the FRONT (RPUSH, as
kombu's restore_visible does), and counts the lost delivery. Conditional, so it is safe against a
concurrent ack, a lease refresh, another Celeriac restorer and kombu's own restore_by_tag (which
WATCHes `unacked`): the message moves only if its lease is still expired and it is still held.

KEYS[1]         unacked
KEYS[2]         unacked_index
KEYS[3]         deliveries
KEYS[4..3+T]    the lists to push it on (kombu's lookup of exchange/routing_key; usually one)
KEYS[4+T..]     the wake lists of those queues
ARGV[1]         delivery tag
ARGV[2]         ceiling: restore only if the unacked_index score is <= this (now - visibility_timeout)
ARGV[3]         the envelope to push (redelivered flags set by the caller), '' to push the held one as is
ARGV[4]         T
ARGV[5]         1 to count it as a delivery (a lost lease, close), 0 not to (fetched after a cancel)
Returns         1 restored, 0 not due or not held any more
]]
local score = redis.call('ZSCORE', KEYS[2], ARGV[1])
if not score or tonumber(score) > tonumber(ARGV[2]) then
  return 0
end
redis.call('ZREM', KEYS[2], ARGV[1])
local held = redis.call('HGET', KEYS[1], ARGV[1])
if not held then
  return 0
end
redis.call('HDEL', KEYS[1], ARGV[1])
if ARGV[5] ~= '0' then
  redis.call('HINCRBY', KEYS[3], ARGV[1], 1)
end
local payload = ARGV[3]
if payload == '' then
  local ok, v = pcall(cjson.decode, held)
  if ok and type(v) == 'table' and type(v[1]) == 'string' then
    payload = v[1]
  elseif ok and type(v) == 'table' and type(v[1]) == 'table' then
    payload = cjson.encode(v[1])
  else
    return 0
  end
end
local t = tonumber(ARGV[4])
for i = 1, t do
  redis.call('RPUSH', KEYS[3 + i], payload)
  local wake = KEYS[3 + t + i]
  if wake and redis.call('LLEN', wake) < 64 then
    redis.call('LPUSH', wake, '1')
  end
end
return 1
