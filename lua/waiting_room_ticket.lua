-- A member's ticket in a product's waiting room: join (one ticket per member, INCR'd in arrival
-- order) or check one, and where it stands. Admission needs no background job: the room admits
-- tickets up to  base + initial batch + floor(admit rate x seconds since it opened),  so a ticket
-- is admitted exactly when that number reaches it, in ticket order (first come, first served).
-- An admitted ticket's owner gets an admission pass that POST /orders accepts while it lives.
-- Every key carries the product's hash tag, so the script stays within one cluster slot.
-- KEYS[1]  the room (hash: opened, base; see lua/waiting_room_gate.lua); absent = no room open
-- KEYS[2]  the product's ticket sequence
-- KEYS[3]  the product's tickets, a hash: memberId -> ticket
-- KEYS[4]  the member's admission pass for this product
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
--          {} when "check" names a ticket that is not the member's.
local ticket = tonumber(redis.call('HGET', KEYS[3], ARGV[2]) or '0')
if ARGV[1] == 'join' then
  if ticket == 0 then
    ticket = redis.call('INCR', KEYS[2])
    redis.call('HSET', KEYS[3], ARGV[2], ticket)
  end
  redis.call('PEXPIRE', KEYS[2], tonumber(ARGV[8]))
  redis.call('PEXPIRE', KEYS[3], tonumber(ARGV[8]))
elseif ticket == 0 or ticket ~= tonumber(ARGV[3]) then
  return {}
end
local now, rate = tonumber(ARGV[4]), tonumber(ARGV[6])
local position, wait = 0, 0
local room = redis.call('HMGET', KEYS[1], 'opened', 'base')
if room[1] then
  local elapsed = math.max(0, now - tonumber(room[1]))
  local admitted_up_to = tonumber(room[2]) + tonumber(ARGV[5]) + math.floor(elapsed * rate / 1000)
  if ticket > admitted_up_to then
    position = ticket - admitted_up_to
    wait = -1
    if rate > 0 then
      wait = math.ceil(position * 1000 / rate)
    end
  end
end
if position == 0 then
  redis.call('SET', KEYS[4], ticket, 'PX', tonumber(ARGV[7]))
  return {ticket, 0, 1, 0}
end
return {ticket, position, 0, wait}
