"""The per-number token bucket in Redis (one Lua call grants several tokens)."""

import pytest

from campaigns.engine import redis as engine_redis
from campaigns.engine.pacing import PACE_SHARE, THROTTLE_FACTOR, Pacer


@pytest.fixture(autouse=True)
def clean_buckets():
    redis = engine_redis.client()
    for key in redis.scan_iter("tf:bucket:*"):
        redis.delete(key)


def test_a_fresh_bucket_grants_a_small_burst_not_a_whole_second():
    pacer = Pacer(phone_number_id="P1", rate=100, campaign_id=1)

    grant = pacer.take(100)

    assert 1 <= grant.tokens <= 10
    assert pacer.take(100).tokens == 0


def test_two_workers_share_one_number_s_bucket():
    first = Pacer(phone_number_id="P2", rate=100, campaign_id=1)
    second = Pacer(phone_number_id="P2", rate=100, campaign_id=2)

    taken = first.take(100).tokens

    assert second.take(100).tokens == 0
    assert taken > 0


def test_130429_cuts_the_rate_blocks_the_number_and_counts_once_per_burst():
    pacer = Pacer(phone_number_id="P3", rate=100, campaign_id=1)

    cut = pacer.slow_down(backoff_s=30)
    again = pacer.slow_down(backoff_s=30)
    grant = pacer.take(5)

    assert cut == pytest.approx(100 * PACE_SHARE * THROTTLE_FACTOR)
    assert again == cut
    assert grant.tokens == 0
    assert grant.wait_s > 25


def test_the_rate_recovers_gradually_after_the_back_off():
    pacer = Pacer(phone_number_id="P4", rate=100, campaign_id=1)
    pacer.slow_down(backoff_s=0.01)
    redis = engine_redis.client()
    key = engine_redis.bucket_key("P4")
    redis.hset(key, mapping={"ts": float(redis.hget(key, "ts")) - 1, "until": 0})

    rate = pacer.take(1).rate

    assert 100 * PACE_SHARE * THROTTLE_FACTOR < rate < 100 * PACE_SHARE


def test_a_campaign_cap_limits_every_number_of_the_campaign_together():
    first = Pacer(phone_number_id="P5", rate=100, campaign_id=9, campaign_rate=20)
    second = Pacer(phone_number_id="P6", rate=100, campaign_id=9, campaign_rate=20)

    taken = first.take(50).tokens + second.take(50).tokens

    assert taken <= 2


def test_every_grant_carries_the_engine_generation():
    pacer = Pacer(phone_number_id="P7", rate=100, campaign_id=1)
    before = pacer.take(1).generation

    engine_redis.generation_bump()

    assert pacer.take(1).generation == before + 1
