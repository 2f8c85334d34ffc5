-- A member's ticket in a product's open waiting room: join (one ticket per member and opening,
-- INCR'd in arrival order) or check one, and where it stands. Admission needs no background job:
-- the room admits tickets up to  base + initial batch + floor(admit rate x seconds since it opened),
-- so a ticket is admitted exactly when that number reaches it, in ticket order (first come, first
-- served). An admitted ticket's owner gets an admission pass that POST /orders accepts while it
-- lives and while the same opening lasts. No room open: no ticket and no pass (the gate lets every
-- order through then); a ticket or pass of an earlier opening counts for nothing in a later one.
-- Every key carries the product's hash tag, so the script stays within one cluster slot.
-- KEYS[1]  the room (hash: opened, base; see lua/waiting_room_gate.lua); absent = no room open
-- KEYS[2]  the product's ticket sequence
-- KEYS[3]  the product's tickets, a hash: memberId -> "<opened of its room>:<ticket>"
-- KEYS[4]  the member's admission pass for this product (its value: the opened of its room)
-- ARGV[1]  "join" (issue the member's ticket, or find the one they have) or "check"
-- ARGV[2]  member id
-- ARGV[3]  the ticket being checked ("check"; ignored by "join")
-- ARGV[4]  now, epoch milliseconds (the caller's clock)
-- ARGV[5]  initial batch: tickets admitted the moment the room opens
-- ARGV[6]  admit rate, tickets per second (0: only the initial batch)
-- ARGV[7]  milliseconds an admission pass lives
-- ARGV[8]  milliseconds the tickets are kept after the last join
-- Returns  {ticket, position, admitted (1/0), estimated wait ms (-1: unknown)}, position 0 when
--          admitted, else how many tickets up to and including this one are not admitted yet;
--          {-1} when no room is open; {} when "check" names a ticket that is not the member's
--          in the room open now.
local room = redis.call('HMGET', KEYS[1], 'opened', 'base')
if not room[1] then
  return {-1}
end
local opened = room[1]
local ticket = 0
local held = redis.call('HGET', KEYS[3], ARGV[2])
if held then
  local held_room, held_ticket = string.match(held, '^(%d+):(%d+)$')
  if held_room == opened then
    ticket = tonumber(held_ticket)
  end
end
if ARGV[1] == 'join' then
  if ticket == 0 then
    ticket = redis.call('INCR', KEYS[2])
    redis.call('HSET', KEYS[3], ARGV[2], opened .. ':' .. ticket)
  end
  redis.call('PEXPIRE', KEYS[2], tonumber(ARGV[8]))
  redis.call('PEXPIRE', KEYS[3], tonumber(ARGV[8]))
elseif ticket == 0 or ticket ~= tonumber(ARGV[3]) then
  return {}
end
local now, rate = tonumber(ARGV[4]), tonumber(ARGV[6])
local elapsed = math.max(0, now - tonumber(opened))
local admitted_up_to = tonumber(room[2]) + tonumber(ARGV[5]) + math.floor(elapsed * rate / 1000)
if ticket <= admitted_up_to then
  redis.call('SET', KEYS[4], opened, 'PX', tonumber(ARGV[7]))
  return {ticket, 0, 1, 0}
end
local position = ticket - admitted_up_to
local wait = -1
if rate > 0 then
  wait = math.ceil(position * 1000 / rate)
end
return {ticket, position, 0, wait}
