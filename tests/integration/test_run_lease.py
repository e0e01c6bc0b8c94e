"""One lease per order: a run whose lease ran out and was taken over records nothing."""

from __future__ import annotations

import pytest

from shop.models import utcnow
from shop.pipeline import ledger
from shop.states import Step
from tests.support.stack import Stack, order_payload


def test_a_run_whose_lease_was_taken_over_can_checkpoint_nothing(db_stack: Stack) -> None:
    order_id = db_stack.place(order_payload((db_stack.add_product(), 1)))["order_id"]
    with db_stack.services.db.begin() as session:
        first = ledger.take_lease(session, order_id, "first", utcnow(), 30)
        assert first is not None
        ledger.advance(session, first, utcnow(), begin=[Step.INVENTORY])
    with db_stack.services.db.begin() as session:
        assert ledger.take_lease(session, order_id, "second", utcnow(), 30) is None  # held: not yet
    db_stack.rows("UPDATE orders SET lease_expires_at = '2000-01-01 00:00:00' WHERE id = :o RETURNING id", o=order_id)
    with db_stack.services.db.begin() as session:
        second = ledger.take_lease(session, order_id, "second", utcnow(), 30)  # the first one hung, or died
        assert second is not None

    for checkpoint in (ledger.renew, ledger.complete):
        with pytest.raises(ledger.LeaseLost), db_stack.services.db.begin() as session:
            if checkpoint is ledger.renew:
                ledger.renew(session, first, utcnow(), 30)
            else:
                ledger.complete(session, first, utcnow())
    with db_stack.services.db.begin() as session:
        ledger.renew(session, second, utcnow(), 30)  # the new owner's fence holds
    assert db_stack.scalar("SELECT lease_token FROM orders WHERE id = :o", o=order_id) == second.token
