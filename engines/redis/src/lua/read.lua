-- A stream's view, and its records after a position.
-- KEYS[1] meta, KEYS[2] log (as in append.lua).
-- ARGV: 1 a fresh epoch (used when the stream has none), 2 the position's epoch ('' for the
--       view alone), 3 its offset, 4 most records, 5 now (ms), 6 the time to live (ms) of a
--       stream made here.
-- Returns {epoch, last offset, first offset kept, read mark, records, nonce at the position}:
-- records as XRANGE gives them, only when the position is of this epoch and still covered;
-- the nonce of the record at the position when it is kept, else nil.
local meta, log = KEYS[1], KEYS[2]
local m = redis.call('HMGET', meta, 'e', 'o', 'r', 'a')
local epoch = m[1]
if not epoch then
  redis.call('DEL', log)
  epoch = ARGV[1]
  redis.call('HSET', meta, 'e', epoch, 'o', 0, 'b', 0, 'r', 0)
  redis.call('PEXPIRE', meta, ARGV[6])
  m = {epoch, '0', '0', false}
end
if m[4] then
  -- Records past their age go here as well as at appends: a quiet stream is read whole.
  local oldest = tonumber(ARGV[5]) - tonumber(m[4])
  while true do
    local first = redis.call('XRANGE', log, '-', '+', 'COUNT', 1)[1]
    if not first or tonumber(first[2][6]) >= oldest then
      break
    end
    redis.call('XDEL', log, first[1])
    redis.call('HINCRBY', meta, 'b', -tonumber(first[2][8]))
  end
end
local top = tonumber(m[2])
local first = top + 1
local head = redis.call('XRANGE', log, '-', '+', 'COUNT', 1)[1]
if head then
  first = tonumber(string.match(head[1], '^(%d+)'))
end
local records = {}
local nonce = false
if ARGV[2] == epoch then
  local after = tonumber(ARGV[3])
  if after + 1 >= first and after <= top then
    records = redis.call('XRANGE', log, '(' .. after .. '-0', '+', 'COUNT', ARGV[4])
    if after > 0 then
      local at = redis.call('XRANGE', log, after .. '-0', after .. '-0')[1]
      if at then
        nonce = at[2][4]
      end
    end
  end
end
return {epoch, top, first, tonumber(m[3]), records, nonce}
