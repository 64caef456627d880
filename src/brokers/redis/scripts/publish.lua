--[[
publish: pushes N messages atomically (all or nothing), some ready and some delayed, and leaves
wake-up tokens for idle Celeriac consumers.

A ready message is LPUSHed on its (priority sub-)queue list exactly as kombu's producer does; a
delayed one (notBefore) is ZADDed to the queue's delayed set, member = priority step char (0/3/6/9)
followed by the envelope, so the mover (move_due.lua) knows which sub-queue it belongs to.

KEYS[1..N]        target of message i: a queue list (ready) or a delayed zset (delayed)
KEYS[N+1..N+W]    wake lists of the queues that received a ready message
ARGV[1]           N
ARGV[2]           W
ARGV[3]           wake cap: a wake list is never grown beyond this many tokens
ARGV[3+2i-1]      score of message i: '' for ready, epoch ms (notBefore) for delayed
ARGV[3+2i]        payload of message i: the kombu envelope (ready) or step char .. envelope (delayed)
Returns           N
]]
local n = tonumber(ARGV[1])
local w = tonumber(ARGV[2])
local cap = tonumber(ARGV[3])
for i = 1, n do
  local score = ARGV[2 + 2 * i]
  local payload = ARGV[3 + 2 * i]
  if score == '' then
    redis.call('LPUSH', KEYS[i], payload)
  else
    redis.call('ZADD', KEYS[i], score, payload)
  end
end
for j = 1, w do
  local key = KEYS[n + j]
  if redis.call('LLEN', key) < cap then
    redis.call('LPUSH', key, '1')
  end
end
return n
