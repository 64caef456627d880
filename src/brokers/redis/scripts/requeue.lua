--[[
requeue: gives a held delivery back to the END of its queue (kombu's reject(requeue=True) order:
LPUSH, behind the messages already waiting) and counts it as a delivery.

KEYS[1]   unacked
KEYS[2]   unacked_index
KEYS[3]   deliveries
KEYS[4]   the queue list (priority sub-queue) to put it on
KEYS[5]   the queue's wake list
ARGV[1]   delivery tag
ARGV[2]   the envelope to push (the held one with headers.redelivered / delivery_info.redelivered set)
Returns   1, or 0 when the delivery was no longer held (its lease ran out: already restored)
]]
if redis.call('HDEL', KEYS[1], ARGV[1]) == 0 then
  redis.call('ZREM', KEYS[2], ARGV[1])
  return 0
end
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('HINCRBY', KEYS[3], ARGV[1], 1)
redis.call('LPUSH', KEYS[4], ARGV[2])
if redis.call('LLEN', KEYS[5]) == 0 then
  redis.call('LPUSH', KEYS[5], '1')
end
return 1
