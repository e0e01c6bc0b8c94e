"""Order and step states: what may follow what."""

from __future__ import annotations

from shop.states import FANOUT, ORDER_TRANSITIONS, PHASES, STEPS, OrderStatus, Step, sources_of


def test_final_states_have_no_way_out() -> None:
    for final in (OrderStatus.COMPLETED, OrderStatus.FAILED, OrderStatus.CANCELLED):
        assert ORDER_TRANSITIONS[final] == frozenset()


def test_every_step_is_in_one_phase_inventory_first_and_the_fanout_last() -> None:
    assert [step for phase in PHASES for step in phase] == list(STEPS)
    assert PHASES[0] == (Step.INVENTORY,) and PHASES[1] == (Step.PAYMENT,) and PHASES[-1] == FANOUT


def test_an_order_can_be_completed_only_from_processing_or_needs_attention() -> None:
    assert set(sources_of(OrderStatus.COMPLETED)) == {OrderStatus.PROCESSING, OrderStatus.NEEDS_ATTENTION}
