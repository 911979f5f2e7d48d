"""Herald's own count of a platform's daily API quota (herald_spend_quota_v1): units are spent per
platform per day only while the day's total stays within the limit, and concurrent runs never
spend past it together. Run on both transports.
"""

from __future__ import annotations

import asyncio
from datetime import date

DAY = date(2030, 1, 15)


async def test_spends_up_to_the_limit_and_refuses_beyond_it(harness):
    store = harness.store
    assert await store.spend_quota("youtube", DAY, 1600, 5000) == (True, 1600)
    assert await store.spend_quota("youtube", DAY, 1600, 5000) == (True, 3200)
    assert await store.spend_quota("youtube", DAY, 1600, 5000) == (True, 4800)
    # 6400 would pass 5000: refused, nothing written
    assert await store.spend_quota("youtube", DAY, 1600, 5000) == (False, 4800)
    assert await store.spend_quota("youtube", DAY, 1600, 5000) == (False, 4800)
    # a smaller call still fits; then the day is exactly full
    assert await store.spend_quota("youtube", DAY, 200, 5000) == (True, 5000)
    assert await store.spend_quota("youtube", DAY, 1, 5000) == (False, 5000)
    # a raised quota (the same day, a larger limit) has room again
    assert await store.spend_quota("youtube", DAY, 1600, 10000) == (True, 6600)


async def test_a_call_costing_more_than_the_whole_quota_is_refused_on_an_empty_day(harness):
    assert await harness.store.spend_quota("youtube", DAY, 1600, 1000) == (False, 0)
    assert await harness.store.spend_quota("youtube", DAY, 1000, 1000) == (True, 1000)


async def test_each_day_and_each_platform_has_its_own_count(harness):
    store = harness.store
    assert await store.spend_quota("youtube", DAY, 1600, 1600) == (True, 1600)
    assert await store.spend_quota("youtube", DAY, 1600, 1600) == (False, 1600)
    # the next day (the quota reset) starts from zero; the previous one stays full
    assert await store.spend_quota("youtube", date(2030, 1, 16), 1600, 1600) == (True, 1600)
    assert await store.spend_quota("youtube", DAY, 1600, 1600) == (False, 1600)
    # another platform's count is its own
    assert await store.spend_quota("other", DAY, 1600, 1600) == (True, 1600)


async def test_concurrent_spends_never_pass_the_limit(harness):
    # 30 calls of 1600 against 10000 from two stores at once (two runs): exactly 6 fit
    stores = [harness.store, harness.another_store()]
    answers = await asyncio.gather(*(stores[i % 2].spend_quota("youtube", DAY, 1600, 10000) for i in range(30)))
    spent = [used for ok, used in answers if ok]
    assert len(spent) == 6
    assert sorted(spent) == [1600 * n for n in range(1, 7)]
    assert all(used <= 10000 for _, used in answers)
    assert await harness.store.spend_quota("youtube", DAY, 0, 10000) == (True, 9600)
