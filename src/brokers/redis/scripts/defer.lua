--[[
defer: settles a held delivery and parks its message in the queue's delayed zset until notBefore,
atomically (used for eta/countdown far in the future: no eta message waits in a worker's memory or
in `unacked`, so no visibility timeout can run it twice). Not counted as a delivery: the Celeriac
delivery count of the tag is kept as it is.

KEYS[1]   unacked
KEYS[2]   unacked_index
KEYS[3]   the queue's delayed zset (member: priority step char .. envelope, score: epoch ms)
ARGV[1]   delivery tag
ARGV[2]   notBefore, epoch ms
ARGV[3]   member: step char (0/3/6/9) followed by the envelope
Returns   1, or 0 when the delivery was no longer held (already restored: nothing parked)
]]
if redis.call('HDEL', KEYS[1], ARGV[1]) == 0 then
  redis.call('ZREM', KEYS[2], ARGV[1])
  return 0
end
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZADD', KEYS[3], ARGV[2], ARGV[3])
return 1
