"""The consumption watchdog's verdict: when has a worker stopped consuming?"""

from __future__ import annotations

from tasks.watchdog import INTERVAL, MISSED_INTERVALS, is_stuck

LIMIT = INTERVAL * MISSED_INTERVALS


def test_a_worker_whose_canaries_stopped_for_three_intervals_is_stuck() -> None:
    assert is_stuck(last_consumed=1000.0, started_at=900.0, now=1000.0 + LIMIT + 1)
    assert not is_stuck(last_consumed=1000.0, started_at=900.0, now=1000.0 + LIMIT - 1)


def test_a_worker_that_never_consumed_is_judged_from_its_start() -> None:
    assert not is_stuck(last_consumed=None, started_at=1000.0, now=1000.0 + LIMIT - 1)
    assert is_stuck(last_consumed=None, started_at=1000.0, now=1000.0 + LIMIT + 1)


def test_a_predecessors_canary_under_the_same_hostname_does_not_condemn_a_fresh_worker() -> None:
    # `make run` stopped and started again: the old worker's last canary is still in
    # Redis under "celery@<host>", older than the limit; the new worker just started.
    stale = 1000.0
    started = stale + LIMIT + 5
    assert not is_stuck(last_consumed=stale, started_at=started, now=started + INTERVAL)
