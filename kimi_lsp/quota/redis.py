"""The shared ledger in Redis: one budget for a team.

The same rule as ``ledger.decide`` and the same queue as ``ledger.ahead_of``, run as one Lua
script per admission so it is atomic across every client, and on the Redis server's clock
(``TIME``), not the clients'. Charges are a sorted set scored by time (member
``id:tokens:model``); leases a hash of expiry times renewed by their holder (a holder that
dies stops renewing, and its lease lapses). The queue is a hash of expiry times (an entry
lapses unless its waiter re-checks) and a hash of what each waiter is and waits for
(``batch|enqueued|until|limit``); ids come from the same counter as charges, so they only grow.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import redis

from kimi_lsp.quota.ledger import (
    QUEUE_RECHECK_S,
    QUEUE_TTL_S,
    Decision,
    Never,
    Wait,
    Waiter,
    cap,
    never_batch_tpd,
    never_batch_tpm,
    never_tpd,
    never_tpm,
    queue_report,
)
from kimi_lsp.quota.limits import Limits
from kimi_lsp.quota.types import LEASE_TTL_S, Admitted

_NOW = "local t = redis.call('TIME') local now = tonumber(t[1]) + tonumber(t[2]) / 1e6 "

_QUEUE = """
local function parse(info)
  local b, enq, untl, lim = string.match(info or '', '^(%d)|([^|]*)|([^|]*)|(.*)$')
  if b == nil then return {batch = false, enqueued = 0, untl = 0, limit = ''} end
  return {batch = b == '1', enqueued = tonumber(enq), untl = tonumber(untl), limit = lim}
end
local function live_queue(queue, info, now)
  local out = {}
  local all = redis.call('HGETALL', queue)
  for i = 1, #all, 2 do
    local id = tonumber(all[i])
    if tonumber(all[i + 1]) < now then
      redis.call('HDEL', queue, all[i])
      redis.call('HDEL', info, all[i])
    else
      local w = parse(redis.call('HGET', info, all[i]))
      w.id = id
      table.insert(out, w)
    end
  end
  return out
end
local function before(a_batch, a_id, b_batch, b_id)
  if a_batch ~= b_batch then return b_batch end
  return a_id < b_id
end
"""

_ADMIT = (
    _NOW
    + _QUEUE
    + """
local charges, leases, meta, seq, queue, info = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5],
    KEYS[6]
local answered = KEYS[7]
local conc, rpm, tpm, tpd = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]),
    tonumber(ARGV[4])
local tokens, model, batch = tonumber(ARGV[5]), ARGV[6], ARGV[7] == '1'
local reserve, ttl = tonumber(ARGV[8]), tonumber(ARGV[9])
local entry, join, qttl = tonumber(ARGV[10]), ARGV[11] == '1', tonumber(ARGV[12])
local recheck, probe_above = tonumber(ARGV[13]), tonumber(ARGV[14])
redis.call('ZREMRANGEBYSCORE', charges, '-inf', now - 86400)
local open, unanswered = 0, 0
local held = redis.call('HGETALL', leases)
for i = 1, #held, 2 do
  if tonumber(held[i + 1]) < now then redis.call('HDEL', leases, held[i]) else
    open = open + 1
    if redis.call('HEXISTS', answered, held[i]) == 0 then unanswered = unanswered + 1 end
  end
end
-- a re-check is the waiter's heartbeat (a lapsed entry keeps its place); so is keep
local enqueued = now
if entry > 0 then
  redis.call('HSET', queue, entry, now + qttl)
  local mine = redis.call('HGET', info, entry)
  if mine then enqueued = parse(mine).enqueued else
    redis.call('HSET', info, entry, (batch and '1' or '0') .. '|' .. now .. '|0|')
  end
end
for i = 15, #ARGV do
  if redis.call('HEXISTS', queue, ARGV[i]) == 1 then
    redis.call('HSET', queue, ARGV[i], now + qttl)
  end
end
local waiters = live_queue(queue, info, now)
local function leave()
  if entry > 0 then
    redis.call('HDEL', queue, entry)
    redis.call('HDEL', info, entry)
  end
end
local function place(limit, untl)
  if entry == 0 then
    if not join then return 0 end
    entry = redis.call('INCR', seq)
    redis.call('HSET', queue, entry, now + qttl)
  end
  redis.call('HSET', info, entry,
    (batch and '1' or '0') .. '|' .. enqueued .. '|' .. untl .. '|' .. limit)
  return entry
end
local function cap(limit)
  if limit < 0 then return -1 end
  if not batch or limit <= 1 or reserve <= 0 then return limit end
  return math.max(1, limit - math.max(1, math.ceil(limit * reserve)))
end
if tpm >= 0 and tokens > tpm then leave() return {'never', 'tpm', '0'} end
local tp = cap(tpm)
if tp >= 0 and tokens > tp then leave() return {'never', 'batch-tpm', '0'} end
local day = redis.call('ZRANGEBYSCORE', charges, now - 86400, '+inf', 'WITHSCORES')
local spent, minute = 0, {}
for i = 1, #day, 2 do
  local n = tonumber(string.match(day[i], '^%d+:(%d+):'))
  local at = tonumber(day[i + 1])
  spent = spent + n
  if at > now - 60 then table.insert(minute, {at, n}) end
end
if tpd >= 0 and spent + tokens > tpd then leave() return {'never', 'tpd', tostring(spent)} end
local td = cap(tpd)
if td >= 0 and spent + tokens > td then leave() return {'never', 'batch-tpd', tostring(spent)} end
local ahead, head = 0, nil
for _, w in ipairs(waiters) do
  if w.id ~= entry and (entry == 0 and (not w.batch or w.batch == batch)
      or entry > 0 and before(w.batch, w.id, batch, entry)) then
    ahead = ahead + 1
    if head == nil or before(w.batch, w.id, head.batch, head.id) then head = w end
  end
end
if ahead > 0 then
  local secs = math.max(recheck, head.untl - now)
  local noun = ahead == 1 and ' request' or ' requests'
  return {'wait', tostring(secs), ahead .. noun .. ' ahead in the queue', tostring(place('', 0)),
          tostring(ahead)}
end
local function wait(secs, limit)
  return {'wait', tostring(secs), limit, tostring(place(limit, now + secs)), '0'}
end
local cool = tonumber(redis.call('HGET', meta, 'cooldown_until') or '0')
if cool > now then return wait(cool - now, 'cool-down') end
local c = cap(conc)
if c >= 0 and open >= c then return wait(0.25, 'concurrency') end
if probe_above >= 0 and open >= probe_above and unanswered > 0 then
  return wait(0.25, 'concurrency')
end
local r = cap(rpm)
if r >= 0 and #minute >= r then
  return wait(minute[#minute - r + 1][1] + 60 - now, 'requests-per-minute')
end
if tp >= 0 then
  local used = 0
  for _, e in ipairs(minute) do used = used + e[2] end
  if used + tokens > tp then
    for _, e in ipairs(minute) do
      used = used - e[2]
      if used + tokens <= tp then return wait(e[1] + 60 - now, 'tokens-per-minute') end
    end
  end
end
leave()
local id = redis.call('INCR', seq)
redis.call('ZADD', charges, now, id .. ':' .. tokens .. ':' .. model)
redis.call('HSET', leases, id, now + ttl)
return {'admit', tostring(id), tostring(open + 1)}
"""
)

_RENEW = (
    _NOW
    + """
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then
  redis.call('HSET', KEYS[1], ARGV[1], now + tonumber(ARGV[2]))
end
return 1
"""
)

_ANSWERED = (  # ZADD XX GT: only an existing charge, only ever later
    _NOW
    + """
redis.call('ZADD', KEYS[1], 'XX', 'GT', now, ARGV[1])
if redis.call('HEXISTS', KEYS[2], ARGV[2]) == 1 then redis.call('HSET', KEYS[3], ARGV[2], 1) end
local n = 0
for _, id in ipairs(redis.call('HKEYS', KEYS[3])) do
  local expires = tonumber(redis.call('HGET', KEYS[2], id) or '-1')
  if expires >= now then n = n + 1 else redis.call('HDEL', KEYS[3], id) end
end
return n
"""
)

_COOL = (
    _NOW
    + """
local till = now + tonumber(ARGV[1])
local cur = tonumber(redis.call('HGET', KEYS[1], 'cooldown_until') or '0')
if till > cur then redis.call('HSET', KEYS[1], 'cooldown_until', till) end
return 1
"""
)


def _n(limit: int | None) -> int:
    return -1 if limit is None else limit


# What a store that cannot be reached raises (a reset connection can surface as OSError);
# a script error is a bug to see, not a reason to go local.
STORE_ERRORS: tuple[type[BaseException], ...] = (
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    OSError,
)


class RedisLedger:
    def __init__(
        self,
        url: str,
        *,
        prefix: str = "kimi-lsp:quota",
        lease_ttl: float = LEASE_TTL_S,
        queue_ttl: float = QUEUE_TTL_S,
    ) -> None:
        self.url, self.lease_ttl, self.queue_ttl = url, lease_ttl, queue_ttl
        self.client: Any = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=3)
        self.client.ping()  # unreachable → redis.RedisError: the caller falls back
        names = ("charges", "leases", "meta", "seq", "queue", "queue:info", "leases:answered")
        self.keys = [f"{prefix}:{k}" for k in names]
        self._admit = self.client.register_script(_ADMIT)
        self._renew = self.client.register_script(_RENEW)
        self._cool = self.client.register_script(_COOL)
        self._answered = self.client.register_script(_ANSWERED)

    def try_admit(
        self,
        now: float,
        limits: Limits,
        tokens: int,
        *,
        model: str,
        batch: bool,
        reserve: float,
        entry: int | None = None,
        join: bool = False,
        keep: Sequence[int] = (),
        probe_above: int | None = None,
    ) -> Decision | Admitted:
        """As ``SqliteLedger.try_admit``, in one Lua script on the server's clock."""
        del now  # the server's clock decides
        out = [
            x.decode() if isinstance(x, bytes) else str(x)
            for x in self._admit(
                keys=self.keys,
                args=[
                    _n(limits.concurrency),
                    _n(limits.rpm),
                    _n(limits.tpm),
                    _n(limits.tpd),
                    tokens,
                    model.replace(":", "_"),
                    int(batch),
                    reserve,
                    self.lease_ttl,
                    entry or 0,
                    int(join),
                    self.queue_ttl,
                    QUEUE_RECHECK_S,
                    _n(probe_above),
                    *keep,
                ],
            )
        ]
        if out[0] == "admit":
            charge = int(out[1])
            key = f"{charge}:{tokens}:{model.replace(':', '_')}"
            return Admitted(charge, charge, key, opened=int(out[2]))
        if out[0] == "never":
            return self._never(out[1], tokens, limits, batch, reserve, int(out[2]))
        return Wait(float(out[1]), out[2], entry=int(out[3]), ahead=int(out[4]))

    @staticmethod
    def _never(
        which: str, tokens: int, limits: Limits, batch: bool, reserve: float, spent: int
    ) -> Never:
        if which in ("tpm", "batch-tpm"):
            assert limits.tpm is not None
            share = cap(limits.tpm, batch, reserve)
            if which == "tpm" or share is None:
                return never_tpm(tokens, limits.tpm)
            return never_batch_tpm(tokens, limits.tpm, share)
        assert limits.tpd is not None
        share = cap(limits.tpd, batch, reserve)
        if which == "tpd" or share is None:
            return never_tpd(limits.tpd, spent)
        return never_batch_tpd(limits.tpd, share, spent)

    def leave(self, entry: int) -> None:
        """The waiter gave up (cancelled): the ones behind it move up."""
        pipe = self.client.pipeline()
        pipe.hdel(self.keys[4], entry)
        pipe.hdel(self.keys[5], entry)
        pipe.execute()

    def renew(self, lease_id: int, now: float) -> None:
        self._renew(keys=[self.keys[1]], args=[lease_id, self.lease_ttl])

    def answered(self, admitted: Admitted, now: float) -> int:
        """As ``SqliteLedger.answered``, on the server's clock."""
        keys = [self.keys[0], self.keys[1], self.keys[6]]
        return int(self._answered(keys=keys, args=[admitted.key, admitted.lease_id]))

    def settle(self, admitted: Admitted, actual: tuple[int, int, int] | None) -> None:
        pipe = self.client.pipeline()
        pipe.hdel(self.keys[1], admitted.lease_id)
        pipe.hdel(self.keys[6], admitted.lease_id)
        if actual is not None:
            key = f"{self.keys[2]}:usage:{admitted.key.split(':', 2)[2]}"
            pipe.hincrby(key, "input", actual[0])
            pipe.hincrby(key, "cached", actual[1])
            pipe.hincrby(key, "output", actual[2])
            pipe.hincrby(key, "requests", 1)
            pipe.expire(key, 86_400)
        pipe.execute()

    def refund(self, admitted: Admitted) -> None:
        """As ``SqliteLedger.refund``."""
        pipe = self.client.pipeline()
        pipe.zrem(self.keys[0], admitted.key)
        pipe.hdel(self.keys[1], admitted.lease_id)
        pipe.hdel(self.keys[6], admitted.lease_id)
        pipe.execute()

    def cool_down(self, seconds: float, now: float) -> None:
        self._cool(keys=[self.keys[2]], args=[seconds])

    def set_meta(self, key: str, value: float) -> None:
        self.client.hset(self.keys[2], key, value)

    def get_meta(self, key: str, default: float = 0.0) -> float:
        value = self.client.hget(self.keys[2], key)
        return float(value) if value is not None else default

    def metas(self, keys: Sequence[str]) -> dict[str, float]:
        if not keys:
            return {}  # HMGET needs a field
        values = self.client.hmget(self.keys[2], list(keys))  # one round trip
        return {k: float(v) for k, v in zip(keys, values, strict=True) if v is not None}

    def usage(self, now: float) -> dict[str, Any]:
        sec, usec = self.client.time()
        server_now = sec + usec / 1e6
        charges = self.client.zrangebyscore(
            self.keys[0], server_now - 86_400, "+inf", withscores=True
        )
        minute = [(m, at) for m, at in charges if at > server_now - 60]
        tokens = [int(m.decode().split(":")[1]) for m, _ in charges]
        by_model: dict[str, dict[str, int]] = {}
        for key in self.client.scan_iter(f"{self.keys[2]}:usage:*"):
            name = key.decode().rsplit(":", 1)[1]
            raw = {k.decode(): int(v) for k, v in self.client.hgetall(key).items()}
            by_model[name] = {k: raw.get(k, 0) for k in ("input", "cached", "output", "requests")}
        expires = {int(k): float(v) for k, v in self.client.hgetall(self.keys[4]).items()}
        info = {int(k): v.decode() for k, v in self.client.hgetall(self.keys[5]).items()}
        queue = []
        for entry, until in expires.items():
            if until < server_now or entry not in info:
                continue  # lapsed (the next admission drops it)
            b, enqueued, wait_until, limit = info[entry].split("|", 3)
            queue.append(Waiter(entry, b == "1", float(enqueued), limit, float(wait_until)))
        return {
            "store": f"redis: {self.url}",
            "openRequests": self.client.hlen(self.keys[1]),
            "requestsLastMinute": len(minute),
            "tokensLastMinute": sum(int(m.decode().split(":")[1]) for m, _ in minute),
            "tokensLastDay": sum(tokens),
            "cooldownSeconds": max(0.0, self.get_meta("cooldown_until") - server_now),
            "queue": queue_report(server_now, queue),
            "byModel": by_model,
        }
