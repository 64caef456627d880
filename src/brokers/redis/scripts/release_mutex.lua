--[[
release_mutex: deletes kombu's `unacked_mutex` only if this process still holds it (the value is
the holder's random id, as in kombu's Mutex), so a lock that expired and was taken by another
restorer is never released by us.

KEYS[1]   unacked_mutex
ARGV[1]   our lock id
Returns   1 released, 0 not ours
]]
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
