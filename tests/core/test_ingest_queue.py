"""The writer's fair queue: which events each transaction takes, when integrations push at once."""

import pytest

from core.ingest_queue import FairQueue


def batches(queue: FairQueue) -> list[list[tuple[str, int, int]]]:
    """Every batch the queue hands out until it is empty, as (request, start, stop) slices."""
    out = []
    while queue:
        out.append([(s.request, s.start, s.stop) for s in queue.take()])
    return out


@pytest.mark.parametrize(("share", "max_batch", "requests", "expected"), [
    pytest.param(100, 500, [(1, "a", 1), (1, "b", 1), (1, "c", 1)],
                 [[("a", 0, 1), ("b", 0, 1), ("c", 0, 1)]],
                 id="small requests of one integration share one transaction (group commit)"),
    pytest.param(100, 500, [(1, "big", 250)],
                 [[("big", 0, 100)], [("big", 100, 200)], [("big", 200, 250)]],
                 id="a big request alone is applied in slices of one share"),
    pytest.param(100, 500, [(1, "big", 250), (2, "small", 1)],
                 [[("big", 0, 100), ("small", 0, 1)], [("big", 100, 200)], [("big", 200, 250)]],
                 id="another integration's event goes into the first transaction, not after the push"),
    pytest.param(100, 500, [(1, "big", 150), (1, "next", 80), (2, "x", 30)],
                 [[("big", 0, 100), ("x", 0, 30)], [("big", 100, 150), ("next", 0, 50)], [("next", 50, 80)]],
                 id="within an integration, requests keep their order and a slice may end part way"),
    pytest.param(100, 150, [(1, "a", 300), (2, "b", 300), (3, "c", 300)],
                 [[("a", 0, 100), ("b", 0, 50)], [("c", 0, 100), ("a", 100, 150)],
                  [("b", 50, 150), ("c", 100, 150)], [("a", 150, 250), ("b", 150, 200)],
                  [("c", 150, 250), ("a", 250, 300)], [("b", 200, 300), ("c", 250, 300)]],
                 id="a full transaction leaves the next integrations first in line"),
    pytest.param(3, 500, [(1, "a", 1), (1, "b", 1), (1, "c", 1), (1, "d", 1)],
                 [[("a", 0, 1), ("b", 0, 1), ("c", 0, 1)], [("d", 0, 1)]],
                 id="the share counts events, whatever the requests"),
    pytest.param(100, 500, [(1, "empty", 0), (2, "one", 1)], [[("one", 0, 1)]],
                 id="an empty request waits for nothing"),
])
def test_batches_are_fair_by_integration(share, max_batch, requests, expected):
    queue = FairQueue(share=share, max_batch=max_batch)
    for integration, name, size in requests:
        queue.put(integration, name, size)
    assert batches(queue) == expected


def test_a_request_that_arrives_later_waits_one_round_at_most():
    queue = FairQueue(share=100, max_batch=500)
    queue.put(1, "storm", 1000)
    assert [(s.request, s.stop) for s in queue.take()] == [("storm", 100)]
    queue.put(2, "page", 1)
    assert [(s.request, s.start, s.stop) for s in queue.take()] == [("storm", 100, 200), ("page", 0, 1)]


def test_a_dropped_request_hands_out_nothing_more_and_its_integration_goes_on():
    queue = FairQueue(share=10, max_batch=500)
    queue.put(1, "failing", 25)
    queue.put(1, "after", 5)
    queue.put(2, "other", 5)
    assert [(s.request, s.stop) for s in queue.take()] == [("failing", 10), ("other", 5)]
    queue.drop(1, "failing")
    assert batches(queue) == [[("after", 0, 5)]]
