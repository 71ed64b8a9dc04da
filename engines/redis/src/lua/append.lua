-- Appends a record to a stream, trims the stream, publishes the record: atomically.
-- KEYS[1] the stream's meta (HASH: e epoch, o last offset, b bytes kept, r read mark,
--         a max age in ms), KEYS[2] its log (STREAM, entry id = offset-0, fields in this
--         order: r record, n nonce, t time in ms, s size).
-- ARGV: 1 record, 2 size, 3 nonce, 4 now (ms), 5 max messages, 6 max bytes, 7 max age (ms),
--       8 a fresh epoch (used when the stream has none), 9 channel, 10 PUBLISH or SPUBLISH,
--       11 the keys' time to live (ms), 12 '1' when this is a retry of an append whose answer
--       a link failure lost.
-- Returns {epoch, offset, receivers}: receivers is how many subscribers the publish reached
-- (for an outbox, the nodes where its user has a session: a `direct`'s `delivered`; -1 when a
-- retry found the record stored already); or an error starting LIMIT for a record larger than
-- its stream keeps.
--
-- The nonce makes an append idempotent. A retry, and an append that reaches Redis late (its
-- time is more than 2 s behind Redis's clock: a connection that delivered it after the node
-- gave up on it), first look for their nonce among the records appended since (with 5 s of
-- slack for the nodes' clocks): found, the append was stored already and its position is the
-- answer. So a message is stored once whichever of its attempts arrives first.
local meta, log = KEYS[1], KEYS[2]
local size = tonumber(ARGV[2])
if size > tonumber(ARGV[6]) then
  return redis.error_reply('LIMIT a record of ' .. size .. ' bytes is larger than its stream keeps')
end
local epoch = redis.call('HGET', meta, 'e')
local sent = tonumber(ARGV[4])
local clock = redis.call('TIME')
local late = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000) - sent > 2000
if epoch and (ARGV[12] == '1' or late) then
  local since = sent - 5000
  local batch = redis.call('XREVRANGE', log, '+', '-', 'COUNT', 1000)
  local older = #batch < 1000
  for _, entry in ipairs(batch) do
    local fields = entry[2]
    if fields[4] == ARGV[3] then
      return {epoch, tonumber(string.match(entry[1], '^(%d+)')), -1}
    end
    if tonumber(fields[6]) < since then
      older = true
      break
    end
  end
  if not older then
    return redis.error_reply('UNSURE too many records since the append to tell whether it was stored')
  end
end
if not epoch then
  -- No meta: a stream never seen, or forgotten (expired, or lost with what was not
  -- persisted): a new epoch, and whatever log is left belongs to no epoch.
  redis.call('DEL', log)
  epoch = ARGV[8]
  redis.call('HSET', meta, 'e', epoch, 'o', 0, 'b', 0, 'r', 0)
end
redis.call('HSET', meta, 'a', ARGV[7])
local offset = redis.call('HINCRBY', meta, 'o', 1)
redis.call('XADD', log, offset .. '-0', 'r', ARGV[1], 'n', ARGV[3], 't', ARGV[4], 's', ARGV[2])
local bytes = redis.call('HINCRBY', meta, 'b', size)
local count = redis.call('XLEN', log)
local max_messages, max_bytes = tonumber(ARGV[5]), tonumber(ARGV[6])
local oldest = tonumber(ARGV[4]) - tonumber(ARGV[7])
-- The oldest go while any bound is passed.
while count > 0 do
  local first = redis.call('XRANGE', log, '-', '+', 'COUNT', 1)[1]
  local fields = first[2]
  if count > max_messages or bytes > max_bytes or tonumber(fields[6]) < oldest then
    redis.call('XDEL', log, first[1])
    bytes = redis.call('HINCRBY', meta, 'b', -tonumber(fields[8]))
    count = count - 1
  else
    break
  end
end
redis.call('PEXPIRE', meta, ARGV[11])
redis.call('PEXPIRE', log, ARGV[11])
local receivers = redis.call(ARGV[10], ARGV[9], epoch .. ' ' .. offset .. ' ' .. ARGV[3] .. '\n' .. ARGV[1])
return {epoch, offset, receivers}
