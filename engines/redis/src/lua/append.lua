-- Appends a record to a stream, trims the stream, publishes the record: atomically.
-- KEYS[1] the stream's meta (HASH: e epoch, o last offset, b bytes kept, r read mark,
--         a max age in ms), KEYS[2] its log (STREAM, entry id = offset-0, fields in this
--         order: r record, n nonce, t time in ms, s size), KEYS[3] the record's retry marker.
-- ARGV: 1 record, 2 size, 3 nonce, 4 now (ms), 5 max messages, 6 max bytes, 7 max age (ms),
--       8 a fresh epoch (used when the stream has none), 9 channel, 10 PUBLISH or SPUBLISH,
--       11 the keys' time to live (ms), 12 '1' when this is a retry of an append whose answer
--       a link failure lost.
-- Returns {epoch, offset, receivers}: receivers is how many subscribers the publish reached
-- (for an outbox, the nodes where its user has a session: a `direct`'s `delivered`; -1 when a
-- retry found the record stored already); or an error starting LIMIT for a record larger than
-- its stream keeps.
--
-- The nonce makes an append idempotent, whichever of its attempts arrives first:
-- - a retry (sent again after a link failure lost the answer) first looks for its nonce in the
--   log: found, the first attempt was stored and its position is the answer. Not found, it is
--   stored now, and leaves a marker (KEYS[3], named by the nonce, for 15 min: as long as a
--   closed connection may still deliver what it held);
-- - any append first checks for that marker: there, a retry stored it already (the first
--   attempt arrives late) and its position is the answer.
-- Only retries scan or write a marker; other appends pay one GET.
local meta, log, marker = KEYS[1], KEYS[2], KEYS[3]
local size = tonumber(ARGV[2])
if size > tonumber(ARGV[6]) then
  return redis.error_reply('LIMIT a record of ' .. size .. ' bytes is larger than its stream keeps')
end
local stored = redis.call('GET', marker)
if stored then
  local e, o = string.match(stored, '^(%d+) (%d+)$')
  return {e, tonumber(o), -1}
end
local epoch = redis.call('HGET', meta, 'e')
local retry = ARGV[12] == '1'
if epoch and retry then
  local batch = redis.call('XREVRANGE', log, '+', '-', 'COUNT', 10000)
  for _, entry in ipairs(batch) do
    if entry[2][4] == ARGV[3] then
      return {epoch, tonumber(string.match(entry[1], '^(%d+)')), -1}
    end
  end
  if #batch == 10000 then
    return redis.error_reply('UNSURE too many records to tell whether the append was stored')
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
if retry then
  redis.call('SET', marker, epoch .. ' ' .. offset, 'PX', 900000)
end
return {epoch, offset, receivers}
