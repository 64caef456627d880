--[[
settle: ends deliveries for good (ack), in one step for many tags: removes them from kombu's
`unacked` hash and `unacked_index` zset and drops their Celeriac delivery counts.

KEYS[1]   unacked
KEYS[2]   unacked_index
KEYS[3]   deliveries
ARGV      delivery tags
Returns   how many tags were still held (0 for a tag whose lease had run out and was restored)
]]
local held = redis.call('HDEL', KEYS[1], unpack(ARGV))
redis.call('ZREM', KEYS[2], unpack(ARGV))
redis.call('HDEL', KEYS[3], unpack(ARGV))
return held
