"""Spool claims from a remembered listing of inbox/: name order, nothing claimed twice, jobs taken by
another worker skipped, jobs that arrive or come back later still found."""

import os

import pytest

from hospital_imaging.sources.spool import SpoolSource
from imaging_ids import jid


@pytest.fixture(name="pair")
def fixture_pair(tmp_path):
    first = SpoolSource(str(tmp_path / "spool"), worker_id="one")
    second = SpoolSource(str(tmp_path / "spool"), worker_id="two")
    yield first, second
    first.close()
    second.close()


def test_claims_in_name_order_and_lists_inbox_once_per_round(pair, monkeypatch):
    spool = pair[0]
    for index in range(10):
        spool.submit(jid("job%02d" % index), b"x")
    listings = []
    waiting = spool._waiting  # pylint: disable=protected-access

    def counted():
        listings.append(1)
        return waiting()
    monkeypatch.setattr(spool, "_waiting", counted)
    got = [c.job for c in spool.claim(3)] + [c.job for c in spool.claim(3)] + [c.job for c in spool.claim(4)]
    assert got == [jid("job%02d" % i) for i in range(10)]
    assert len(listings) == 1  # the three calls used one listing
    assert spool.claim(5) == [] and len(listings) == 2  # used up: listed again, inbox empty


def test_jobs_taken_by_another_worker_are_skipped_and_new_ones_found(pair):
    first, second = pair
    for index in range(6):
        first.submit(jid("job%02d" % index), b"x")
    assert [c.job for c in first.claim(2)] == [jid("job00"), jid("job01")]  # first now remembers job02..job05
    taken = [c.job for c in second.claim(2)]
    assert taken == [jid("job02"), jid("job03")]
    first.submit(jid("late"), b"x")
    rest = [c.job for c in first.claim(10)]
    assert rest == [jid("job04"), jid("job05"), jid("late")]  # stale names skipped, the new job found by a new listing
    assert sorted(os.listdir(os.path.join(first.root, "claimed"))) == sorted(
        ["one~" + jid("job00"), "one~" + jid("job01"), "two~" + jid("job02"), "two~" + jid("job03"),
         "one~" + jid("job04"), "one~" + jid("job05"), "one~" + jid("late")])


def test_released_job_is_claimed_again(pair):
    spool = pair[0]
    for index in range(3):
        spool.submit(jid("job%02d" % index), b"x")
    claims = spool.claim(1)
    spool.release(claims[0])
    assert [c.job for c in spool.claim(10)] == [jid("job01"), jid("job02"), jid("job00")]
    assert spool.depth() == 0
