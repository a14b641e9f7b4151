"""The driver freezes what survives each Tune run out of the collector's way, and only its own."""

from __future__ import annotations

import gc

from nasfpn.search.driver import _survivors_frozen


def test_freeze_moves_survivors_out_of_the_collector_and_unfreezes_at_the_end():
    assert gc.get_freeze_count() == 0
    kept = [[i] for i in range(1000)]  # survivors, tracked by the collector
    with _survivors_frozen() as freeze:
        assert gc.get_freeze_count() == 0  # nothing until the first Tune run starts
        freeze()
        frozen = gc.get_freeze_count()
        assert frozen >= len(kept)
        collected = {id(o) for o in gc.get_objects()}  # the generations a collection walks
        assert not any(id(x) in collected for x in kept)
        more = [[i] for i in range(500)]
        freeze()  # the next run: what the last one left joins the frozen objects
        assert gc.get_freeze_count() >= frozen + len(more)
    assert gc.get_freeze_count() == 0


def test_a_caller_that_froze_objects_itself_is_left_alone():
    gc.freeze()
    try:
        before = gc.get_freeze_count()
        with _survivors_frozen() as freeze:
            [[i] for i in range(100)]
            freeze()
            assert gc.get_freeze_count() == before
        assert gc.get_freeze_count() == before
    finally:
        gc.unfreeze()
