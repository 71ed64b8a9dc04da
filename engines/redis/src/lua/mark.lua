-- Moves a user's read mark in their outbox, never back, never past its last offset.
-- KEYS[1] the outbox's meta (as in append.lua).
-- ARGV: 1 a fresh epoch (used when the stream has none), 2 the mark's epoch, 3 its offset,
--       4 the time to live (ms) of a stream made here.
-- Returns {epoch, the mark before, the mark now}.
local meta = KEYS[1]
local m = redis.call('HMGET', meta, 'e', 'o', 'r')
local epoch = m[1]
if not epoch then
  epoch = ARGV[1]
  redis.call('HSET', meta, 'e', epoch, 'o', 0, 'b', 0, 'r', 0)
  redis.call('PEXPIRE', meta, ARGV[4])
  m = {epoch, '0', '0'}
end
local before = tonumber(m[3])
local read = before
if ARGV[2] == epoch then
  local upto = math.min(tonumber(ARGV[3]), tonumber(m[2]))
  if upto > before then
    read = upto
    redis.call('HSET', meta, 'r', read)
  end
end
return {epoch, before, read}
