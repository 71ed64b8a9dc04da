-- A node's user present in a room, or gone: kept, and told to the other nodes.
-- KEYS[1] the room's presence (ZSET: member `node:user`, score the entry's expiry in ms: a
--         node refreshes its entries while they last, so a dead node's expire).
-- ARGV: 1 member, 2 '1' present or '0' gone, 3 expiry (ms), 4 the room's channel,
--       5 PUBLISH or SPUBLISH, 6 the message (`P node 1|0 user`), 7 the key's time to live (ms).
if ARGV[2] == '1' then
  redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
else
  redis.call('ZREM', KEYS[1], ARGV[1])
end
redis.call('PEXPIRE', KEYS[1], ARGV[7])
redis.call(ARGV[5], ARGV[4], ARGV[6])
return 1
