"""Order and step states: what may follow what."""

from __future__ import annotations

from shop.states import FANOUT, NEXT_STEPS, ORDER_TRANSITIONS, STEPS, OrderStatus, Step, sources_of


def test_final_states_have_no_way_out() -> None:
    for final in (OrderStatus.COMPLETED, OrderStatus.FAILED, OrderStatus.CANCELLED):
        assert ORDER_TRANSITIONS[final] == frozenset()


def test_every_step_is_reachable_from_inventory_and_the_fanout_ends_the_pipeline() -> None:
    reached, frontier = {Step.INVENTORY}, [Step.INVENTORY]
    while frontier:
        for nxt in NEXT_STEPS[frontier.pop()]:
            reached.add(nxt)
            frontier.append(nxt)
    assert reached == set(STEPS)
    assert all(NEXT_STEPS[s] == () for s in FANOUT)


def test_an_order_can_be_completed_only_from_processing_or_needs_attention() -> None:
    assert set(sources_of(OrderStatus.COMPLETED)) == {OrderStatus.PROCESSING, OrderStatus.NEEDS_ATTENTION}
