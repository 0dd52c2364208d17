"""Per-number pacing shared by every worker: one token bucket per phone in Redis, taken by one
Lua script that grants several tokens per call.

The bucket's rate starts at the number's allowed rate; 130429 cuts it by a quarter and blocks the
number for a moment; it then recovers by a tenth of the allowed rate per second. An optional
second bucket caps the whole campaign. Each grant also returns the engine generation, so a slice
learns of a pause or a template event on the same round trip that paces it.
"""

from dataclasses import dataclass

from campaigns.engine import redis as engine_redis

# Paced at 95% of the rate with a burst of a twentieth of a second: any 1-second window then
# holds at most 0.9975 of the number's limit (the simulator's sliding window, Meta's counter).
BURST_SHARE = 0.05
PACE_SHARE = 0.95
RECOVERY_PER_S = 0.1
# What one 130429 leaves of the rate. Requests paced evenly can still reach Meta bunched (network
# and scheduling jitter), so a lone 130429 usually means "at the edge", not "far above it":
# halving cost a paced campaign a fifth of its rate with webhooks flowing. Repeated refusals
# still cut it quickly (0.75, 0.56, 0.42...), and it climbs back by RECOVERY_PER_S.
THROTTLE_FACTOR = 0.75

_TAKE = """
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) + tonumber(now_parts[2]) / 1000000
local want = tonumber(ARGV[1])
local granted = want
local wait = 0
local function refill(key, cap, recover)
  local h = redis.call('HMGET', key, 'tokens', 'ts', 'rate', 'until')
  local rate = tonumber(h[3]) or cap
  if rate > cap then rate = cap end
  local ts = tonumber(h[2]) or now
  local elapsed = math.max(0, now - ts)
  if recover and rate < cap then rate = math.min(cap, rate + cap * ARGV[5] * elapsed) end
  local burst = math.max(1, rate * ARGV[4])
  local tokens = tonumber(h[1]) or burst
  tokens = math.min(burst, tokens + rate * elapsed)
  local blocked = tonumber(h[4]) or 0
  return tokens, rate, blocked
end
local p_tokens, p_rate, p_until = refill(KEYS[1], tonumber(ARGV[2]), true)
if p_until > now then
  granted = 0
  wait = p_until - now
else
  granted = math.min(granted, math.floor(p_tokens))
end
local c_tokens, c_rate = 0, 0
local capped = tonumber(ARGV[3]) > 0
if capped then
  c_tokens, c_rate = refill(KEYS[2], tonumber(ARGV[3]), false)
  granted = math.min(granted, math.floor(c_tokens))
end
if granted < 1 then
  granted = 0
  local short = math.max(1 - p_tokens, 0) / p_rate
  if capped then short = math.max(short, math.max(1 - c_tokens, 0) / c_rate) end
  if short > wait then wait = short end
end
redis.call('HSET', KEYS[1], 'tokens', p_tokens - granted, 'ts', now, 'rate', p_rate,
  'until', p_until)
redis.call('EXPIRE', KEYS[1], 300)
if capped then
  redis.call('HSET', KEYS[2], 'tokens', c_tokens - granted, 'ts', now, 'rate', c_rate)
  redis.call('EXPIRE', KEYS[2], 300)
end
local gen = redis.call('GET', KEYS[3]) or '0'
return {granted, tostring(wait), gen, tostring(p_rate)}
"""

_SLOW = """
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) + tonumber(now_parts[2]) / 1000000
local cap = tonumber(ARGV[1])
local rate = tonumber(redis.call('HGET', KEYS[1], 'rate')) or cap
local blocked = tonumber(redis.call('HGET', KEYS[1], 'until')) or 0
-- One burst of 130429s from many requests in flight cuts the rate once, not once per error.
if blocked > now then return tostring(rate) end
rate = math.max(1, rate * tonumber(ARGV[3]))
redis.call('HSET', KEYS[1], 'rate', rate, 'tokens', 0, 'ts', now, 'until', now + tonumber(ARGV[2]))
redis.call('EXPIRE', KEYS[1], 300)
return tostring(rate)
"""


@dataclass(frozen=True)
class Grant:
    tokens: int
    wait_s: float
    generation: int
    rate: float


class Pacer:
    """The bucket of one phone number (and optionally of one campaign)."""

    def __init__(self, *, phone_number_id: str, rate: float, campaign_id: int, campaign_rate=0):
        self.redis = engine_redis.client()
        self.rate = max(float(rate), 1.0) * PACE_SHARE
        self.campaign_rate = float(campaign_rate or 0) * PACE_SHARE
        self.keys = [
            engine_redis.bucket_key(phone_number_id),
            engine_redis.campaign_bucket_key(campaign_id),
            engine_redis.GENERATION,
        ]
        self._take = self.redis.register_script(_TAKE)
        self._slow = self.redis.register_script(_SLOW)

    def rate_set(self, rate: float) -> None:
        """The number's allowed rate changed (its quality): the bucket's cap follows at once."""
        self.rate = max(float(rate), 1.0) * PACE_SHARE

    def take(self, want: int) -> Grant:
        args = [want, self.rate, self.campaign_rate, BURST_SHARE, RECOVERY_PER_S]
        tokens, wait, generation, rate = self._take(keys=self.keys, args=args)
        return Grant(int(tokens), float(wait), int(generation), float(rate))

    def slow_down(self, *, backoff_s: float) -> float:
        """Cuts this number's rate by THROTTLE_FACTOR and blocks it for `backoff_s`; returns
        the new rate."""
        args = [self.rate, backoff_s, THROTTLE_FACTOR]
        return float(self._slow(keys=self.keys[:1], args=args))
