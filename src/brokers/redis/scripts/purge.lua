--[[
purge: removes every ready message of a queue (all four priority sub-queues) and returns how many;
delayed, held (unacked) and dead messages are not touched.

KEYS[1..4]  queue lists for steps 0, 3, 6, 9
Returns     how many messages were removed
]]
local n = 0
for i = 1, #KEYS do
  n = n + redis.call('LLEN', KEYS[i])
end
redis.call('DEL', unpack(KEYS))
return n
