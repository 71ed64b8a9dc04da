-- The node registry: this node's figures written, nodes gone quiet dropped, everyone's read.
-- KEYS[1] figures (HASH: node -> JSON), KEYS[2] expiries (ZSET: node, scored by expiry in ms);
-- both under one hash tag, so in one slot of a cluster.
-- ARGV: 1 node, 2 its figures (JSON), 3 their expiry (ms), 4 now (ms), 5 the keys' time to live.
-- Returns every live node's figures.
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
local gone = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', '(' .. ARGV[4])
for _, node in ipairs(gone) do
  redis.call('HDEL', KEYS[1], node)
  redis.call('ZREM', KEYS[2], node)
end
redis.call('PEXPIRE', KEYS[1], ARGV[5])
redis.call('PEXPIRE', KEYS[2], ARGV[5])
return redis.call('HVALS', KEYS[1])
