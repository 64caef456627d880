--[[
dead_letter: settles a held delivery and appends it to the queue's dead letters with its reason,
atomically.

KEYS[1]   unacked
KEYS[2]   unacked_index
KEYS[3]   deliveries
KEYS[4]   the queue's dead-letter list (records, oldest first)
ARGV[1]   delivery tag
ARGV[2]   the record: JSON {"id", "reason", "at", "step", "raw"} (raw = the envelope as received)
Returns   1, or 0 when the delivery was no longer held (already restored: nothing recorded)
]]
if redis.call('HDEL', KEYS[1], ARGV[1]) == 0 then
  redis.call('ZREM', KEYS[2], ARGV[1])
  return 0
end
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('HDEL', KEYS[3], ARGV[1])
redis.call('RPUSH', KEYS[4], ARGV[2])
return 1
