-- After a reconnection (a failover, a restart): whether a stream still holds the last record
-- this node delivered of it. Asynchronous replication can lose a master's last writes in a
-- failover, and the new master then gives their offsets out again to other messages
-- (centrifugo#664). If the stream's epoch is the one delivered but its offset never reached
-- that record, or the record there is another (its nonce differs), the stream starts a new
-- epoch: every position of the old one is then answered `recovered: false`, never resumed
-- across the gap. Records kept are kept; only the epoch that names them changes.
-- KEYS[1] meta, KEYS[2] log (as in append.lua).
-- ARGV: 1 the epoch delivered, 2 the offset, 3 the record's nonce, 4 a fresh epoch.
-- Returns 1 when the stream started a new epoch, else 0.
local epoch = redis.call('HGET', KEYS[1], 'e')
if epoch ~= ARGV[1] then
  -- Forgotten, or in another epoch already: the hub finds that by itself.
  return 0
end
local offset = tonumber(ARGV[2])
local at = redis.call('XRANGE', KEYS[2], ARGV[2] .. '-0', ARGV[2] .. '-0')[1]
if at then
  if at[2][4] == ARGV[3] then
    return 0
  end
elseif tonumber(redis.call('HGET', KEYS[1], 'o')) >= offset then
  -- Given out and trimmed since (by count, bytes or age): nothing left to compare.
  return 0
end
redis.call('HSET', KEYS[1], 'e', ARGV[4])
return 1
