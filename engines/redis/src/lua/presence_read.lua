-- Everyone present in a room on every node: expired entries dropped first.
-- KEYS[1] the room's presence (as in presence.lua). ARGV[1] now (ms).
-- Returns the members, `node:user` each.
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[1])
return redis.call('ZRANGE', KEYS[1], 0, -1)
