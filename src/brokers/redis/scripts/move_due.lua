--[[
move_due: puts delayed messages that are due back on their queue, at the FRONT (RPUSH: next to be
served, earliest due first), and wakes idle consumers. Any number of consumers may run it at once:
each due member is moved by exactly one of them (ZREM happens in the same atomic step).

KEYS[1]   the queue's delayed zset (member: step char .. envelope, score: epoch ms)
KEYS[2]   queue list, step 0
KEYS[3]   queue list, step 3
KEYS[4]   queue list, step 6
KEYS[5]   queue list, step 9
KEYS[6]   the queue's wake list
ARGV[1]   now, epoch ms
ARGV[2]   at most this many messages per call
Returns   { moved, score of the next delayed member or -1 }
]]
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
local lists = { ['0'] = KEYS[2], ['3'] = KEYS[3], ['6'] = KEYS[4], ['9'] = KEYS[5] }
for i = #due, 1, -1 do
  local member = due[i]
  redis.call('ZREM', KEYS[1], member)
  local list = lists[string.sub(member, 1, 1)] or KEYS[2]
  redis.call('RPUSH', list, string.sub(member, 2))
end
if #due > 0 and redis.call('LLEN', KEYS[6]) < 64 then
  redis.call('LPUSH', KEYS[6], '1')
end
local nxt = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return { #due, nxt[2] or '-1' }
