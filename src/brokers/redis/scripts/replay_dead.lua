--[[
replay_dead: puts dead letters back on their queue (at the back, as a new publish would), all of
them or those whose id is listed, and removes them from the dead letters.

KEYS[1]   the queue's dead-letter list (JSON records {"id", "reason", "at", "step", "raw"})
KEYS[2]   queue list, step 0
KEYS[3]   queue list, step 3
KEYS[4]   queue list, step 6
KEYS[5]   queue list, step 9
KEYS[6]   the queue's wake list
ARGV      ids to replay; none = all
Returns   how many were replayed
]]
local wanted = nil
if #ARGV > 0 then
  wanted = {}
  for _, id in ipairs(ARGV) do wanted[id] = true end
end
local lists = { ['0'] = KEYS[2], ['3'] = KEYS[3], ['6'] = KEYS[4], ['9'] = KEYS[5] }
local records = redis.call('LRANGE', KEYS[1], 0, -1)
local replayed = 0
for _, record in ipairs(records) do
  local ok, r = pcall(cjson.decode, record)
  if ok and type(r) == 'table' and (wanted == nil or wanted[tostring(r.id)]) then
    redis.call('LREM', KEYS[1], 1, record)
    redis.call('LPUSH', lists[tostring(r.step)] or KEYS[2], r.raw)
    replayed = replayed + 1
  end
end
if replayed > 0 and redis.call('LLEN', KEYS[6]) < 64 then
  redis.call('LPUSH', KEYS[6], '1')
end
return replayed
