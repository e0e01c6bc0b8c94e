"""The order's durable run: one task per order, each step's outcome checkpointed in the ledger.

The happy path costs one broker message and four transactions in the worker:

1. take the order's lease; read order, lines and ledger (one SELECT); start inventory;
2. reserve the stock, checkpoint inventory and start payment;
3. charge (outside any transaction, keyed), checkpoint payment and start the fan-out;
4. email, invoice and warehouse run concurrently; one transaction records them
   and completes the order.

Every checkpoint first renews the lease with a conditional UPDATE of the order
row: a run that lost its lease, or whose order was cancelled, rolls back. A
redelivered or recovered run resumes after its last checkpoint. A step that
must retry, or that outgrows its inline budget, continues as its own step task
on its step's queue (``run_slow_step``), under Celery's per-step time limits;
when it succeeds the run continues (Temporal's rule: local steps are short).
"""

from __future__ import annotations

import contextvars
import logging
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import Connection, select
from sqlalchemy.orm import Session, configure_mappers

from shop.dispatch import RUN_TASK, TaskMessage, publish_all, run_task_message, step_task_name
from shop.errors import OutOfStock, PaymentDeclined, PermanentError
from shop.extensions import ShopServices
from shop.integrations.invoices import render_invoice
from shop.logs import bound
from shop.metrics import record_step_runs
from shop.models import Order, new_uuid, utcnow
from shop.pipeline import budget, effects, invoice_numbers, ledger, reactions
from shop.services.notifications import confirmation_email
from shop.services.outbox import publish_outbox
from shop.states import FANOUT, PHASES, STEPS, OrderStatus, Step, StepStatus
from shop.step_policy import (
    LOAD_ORDER_LATENCY,
    STEP_POLICY,
    backoff_seconds,
    inline_budget,
    lease_seconds,
    queue_for,
    run_queue,
    stale_dispatch_seconds,
    time_limits,
)

log = logging.getLogger(__name__)


@dataclass
class StepResult:
    step: Step
    error: BaseException | None = None
    record: effects.EffectRecord | None = None
    seconds: float = 0.0


@dataclass
class Plan:
    """What the current phase needs now, decided from the ledger."""

    inline: list[Step] = field(default_factory=list)  # start inside this run
    slow: list[tuple[Step, float]] = field(default_factory=list)  # hand to the slow path, after a delay
    exhausted: list[Step] = field(default_factory=list)  # killed at every attempt: dead letter
    waiting: list[Step] = field(default_factory=list)  # a slow-path message is on its way
    finished: bool = False  # every step succeeded


def plan(order: Order, now: datetime) -> Plan:
    rows = {Step(row.step): row for row in order.steps}
    for phase in PHASES:
        open_steps = [step for step in phase if rows[step].status != StepStatus.SUCCEEDED]
        if open_steps:
            break
    else:
        return Plan(finished=True)
    result = Plan()
    for step in open_steps:
        row = rows[step]
        if row.status == StepStatus.PENDING:
            result.inline.append(step)
        elif row.status == StepStatus.RUNNING:
            # Its last attempt started and never reported: killed at the hard
            # limit, or lost with its worker. It counted; retry or give up.
            if row.attempts >= STEP_POLICY[step].max_attempts:
                result.exhausted.append(step)
            else:
                result.slow.append((step, backoff_seconds(step, row.attempts)))
        elif row.status == StepStatus.RETRYING:
            # Its slow-path message is on its way; sent again only once it is
            # overdue by a whole lease (lost with Redis, say), never just because
            # it is due: that would only make the message in the queue stale.
            lost = row.due_at is None or row.due_at + timedelta(seconds=lease_seconds(step)) <= now
            if lost:
                result.slow.append((step, 0.0))
            else:
                result.waiting.append(step)
    return result


# --- the run ---------------------------------------------------------------


def run_order(svc: ShopServices, order_id: str, task_id: str) -> str:
    """Run (or resume) the order's pipeline as far as it can go inline."""
    return _Driver(svc, task_id, slow_step=None).start(order_id)


def failed(reason: str) -> str:
    """The outcome of a run that failed the order for a business reason, e.g.
    ``failed: payment_declined``: the task's result in Flower, so an operator
    tells a declined card from a completed order without opening the admin."""
    return f"failed: {reason}"


@dataclass
class SlowStepOutcome:
    outcome: str
    retry_in: float | None = None  # set when the step retries: its countdown
    error: str | None = None  # and the error it retries after


def run_slow_step(svc: ShopServices, order_id: str, step: Step, task_id: str) -> SlowStepOutcome:
    """One step as its own task (a retry, or a step too slow to run inline)."""
    driver = _Driver(svc, task_id, slow_step=step)
    outcome = driver.start(order_id)
    return SlowStepOutcome(outcome, driver.retry_in, driver.retry_error)


class _Driver:
    def __init__(self, svc: ShopServices, task_id: str, slow_step: Step | None) -> None:
        self.svc, self.task_id, self.slow_step = svc, task_id, slow_step
        self.retry_in: float | None = None
        self.retry_error: str | None = None  # why this slow-path task retries: Flower shows it
        self.stale = False  # a slow-path copy whose step is done or carried by another message
        self.messages: list[TaskMessage] = []  # published after the commit; the ledger covers a loss
        self.kept: list[TaskMessage] = []  # in the outbox too: marked published after they are
        self.step_runs: list[tuple[str, str, float]] = []  # (step, outcome, seconds), for the metrics

    conn: Connection  # the current transaction's, set by _transaction

    def start(self, order_id: str) -> str:
        # One session for the run's transactions: making a session per
        # transaction cost an eighth of the pool's CPU (py-spy, 1 000 orders).
        try:
            with bound(order_id=order_id), self.svc.db.sessions() as self.session:
                return self._start(order_id)
        finally:
            record_step_runs(self.svc.redis, self.step_runs)

    @contextmanager
    def _transaction(self) -> Iterator[Connection]:
        """A transaction of the run's session; yields its Connection, which the
        hot writes take instead of the Session (see ``shop.database.Executor``)."""
        with self.session.begin():
            self.conn = self.session.connection()
            yield self.conn

    def _note(self, result: StepResult, outcome: str, attempt: int) -> None:
        """One log line per step attempt, with its context, and its counter."""
        self.step_runs.append((result.step.value, outcome, result.seconds))
        with bound(step=result.step.value, attempt=attempt):
            if result.error is None:
                log.info("step %s %s in %.3fs", result.step, outcome, result.seconds)
            else:
                level = logging.ERROR if outcome == "dead_letter" else logging.WARNING
                log.log(level, "step %s %s: %s: %s", result.step, outcome, type(result.error).__name__, result.error)

    def _start(self, order_id: str) -> str:
        now = utcnow()
        seconds = lease_seconds(self.slow_step) if self.slow_step else lease_seconds(*STEPS)
        session = self.session
        with self._transaction() as conn:
            lease = ledger.take_lease(conn, order_id, self.task_id, now, seconds)
            if lease is None:
                return "busy" if self.slow_step and _is_active(session, order_id) else "skipped"
            order = ledger.read_order(session, order_id)
            todo = plan(order, now)
            decide = self._start_slow if self.slow_step else self._decide
            next_steps = decide(session, lease, order, todo, now)
        handed = self._take_messages()
        publish_all(self.svc.publisher, handed)
        if self.stale:
            return "skipped"
        if not next_steps:
            return "retry" if self.retry_in is not None else "handed_over" if handed else "waiting"
        return self._drive(lease, order, next_steps)

    def _take_messages(self) -> list[TaskMessage]:
        messages, self.messages = self.messages, []
        return messages

    def _decide(self, session: Session, lease: ledger.Lease, order: Order, todo: Plan, now: datetime) -> list[Step]:
        """Apply the run's plan in the caller's transaction; return the steps started inline.

        On the slow path (after its own step) it only hands over what is left:
        work the run would do inline goes back to the run (one message)."""
        rows = {Step(row.step): row for row in order.steps}
        self._dead_letter_exhausted(session, order, todo.exhausted, now)
        start = list(todo.inline) if self.slow_step is None else []
        for step, delay in todo.slow:
            message_id = self._hand_over(order, step, delay)
            if rows[step].status == StepStatus.RUNNING:
                error = f"attempt {rows[step].attempts} was killed or lost (hard time limit, or its worker died)"
                due = now + timedelta(seconds=delay)
                ledger.schedule_retry(session, order.id, step, error, due, now, message_id)
                rows[step].status, rows[step].due_at = StepStatus.RETRYING, due
            else:  # its message was not picked up in time: this one replaces it
                ledger.expect_task(session, order.id, step, message_id)
            rows[step].task_id = message_id
        if self.slow_step is not None and todo.inline:
            self.messages.append(_continuation(order))
        if start:
            for step, attempts in ledger.advance(self.conn, lease, now, begin=start).items():
                rows[step].status, rows[step].attempts = StepStatus.RUNNING, attempts
            _number_invoice(session, order, start, now)
            return start
        self._release(session, lease, order, now)
        return []

    def _start_slow(self, session: Session, lease: ledger.Lease, order: Order, todo: Plan, now: datetime) -> list[Step]:
        """The slow-path task's own step: start it, or retry it, or see that this copy is stale."""
        mine = self.slow_step
        assert mine is not None
        row = next(r for r in order.steps if r.step == mine)
        self._dead_letter_exhausted(session, order, [s for s in todo.exhausted if s == mine], now)
        if row.task_id != self.task_id or row.status not in (StepStatus.RETRYING, StepStatus.RUNNING):
            # Done, dead-lettered, or another message now carries its retry.
            self.stale = True
            self._release(session, lease, order, now)
            return []
        if row.status == StepStatus.RUNNING:
            # This task's own attempt, lost with its process (a crash, or killed at the
            # hard limit): it counted; this same task retries it after the backoff.
            delay = backoff_seconds(mine, row.attempts)
            due = now + timedelta(seconds=delay)
            error = f"attempt {row.attempts} was killed or lost (hard time limit, or its worker died)"
            ledger.schedule_retry(session, order.id, mine, error, due, now, self.task_id)
            row.status, row.due_at, self.retry_in = StepStatus.RETRYING, due, delay
            self._release(session, lease, order, now)
            return []
        row.status, row.attempts = StepStatus.RUNNING, ledger.advance(self.conn, lease, now, begin=[mine])[mine]
        _number_invoice(session, order, [mine], now)
        return [mine]

    def _dead_letter_exhausted(self, session: Session, order: Order, exhausted: list[Step], now: datetime) -> None:
        rows = {Step(row.step): row for row in order.steps}
        for step in exhausted:
            ledger.dead_letter(session, order.id, step, "attempts exhausted: every attempt was killed or lost", now)
            rows[step].status = StepStatus.FAILED
            log.error("step %s of %s dead-lettered: every attempt was killed or lost", step, order.id)

    def _release(self, session: Session, lease: ledger.Lease, order: Order, now: datetime) -> None:
        """Nothing to run here now: leave the order to the messages on their way.

        The wake time is when the latest of them should have been picked up; past
        it the sweep sends the run again. None: nothing is expected (a dead letter
        waits for an operator)."""
        abandoned = any(row.status == StepStatus.RUNNING for row in order.steps)
        if abandoned and not any(m.task_name == RUN_TASK for m in self.messages):
            # Steps whose owner died, found by a process that will not run them
            # (a stale copy): back to the run, never left without a wake time.
            self.messages.append(_continuation(order))
        due = [
            (Step(row.step), max(row.due_at or now, now)) for row in order.steps if row.status == StepStatus.RETRYING
        ]
        wake: datetime | None = None
        queue = run_queue(order.priority)
        if due:
            step, at = max(due, key=lambda item: item[1])
            wake, queue = at + timedelta(seconds=lease_seconds(step)), queue_for(step, order.priority)
        if any(message.task_name == RUN_TASK for message in self.messages):
            wake, queue = now + timedelta(seconds=lease_seconds(*STEPS)), run_queue(order.priority)
        elif wake is None and plan(order, now).inline:
            # Pending work whose run is on its way: the sweep's safety net stays armed.
            wake = now + timedelta(seconds=stale_dispatch_seconds())
        ledger.release(session, lease, now, wake, queue)

    def _hand_over(self, order: Order, step: Step, delay: float) -> str:
        """Send the step to its slow-path task; return that message's task id."""
        message = TaskMessage(
            step_task_name(step),
            queue_for(step, order.priority),
            new_uuid(),
            {"order_id": order.id},
            countdown=delay or None,
        )
        self.messages.append(message)
        return message.task_id

    # --- executing phases --------------------------------------------------

    def _drive(self, lease: ledger.Lease, order: Order, started: list[Step]) -> str:
        outcome = "waiting"
        while started:
            results = self._execute(lease, order, started)
            try:
                next_steps, outcome = self._checkpoint(lease, order, results)
            except ledger.LeaseLost:
                reactions.after_lost_lease(self.svc, order.id, tuple(started))
                return "lost"
            # Only after the commit, and only what a committed checkpoint decided.
            publish_all(self.svc.publisher, self._take_messages())
            kept, self.kept = self.kept, []
            publish_outbox(self.svc.db, self.svc.publisher, kept)
            started = next_steps
        return outcome

    def _execute(self, lease: ledger.Lease, order: Order, started: list[Step]) -> list[StepResult]:
        hard = max(time_limits(step)[1] for step in started)
        what = f"{'+'.join(started)} of order {order.id}"
        with budget.hard_limit.armed(hard, what, lambda: _expire(self.svc, lease)):
            if len(started) == 1:
                return [self._attempt(order, started[0])]
            context = contextvars.copy_context()
            futures = [_pool().submit(context.copy().run, self._attempt, order, step) for step in started]
            return [future.result() for future in futures]

    def _attempt(self, order: Order, step: Step) -> StepResult:
        inline = None if step == self.slow_step else inline_budget(step)
        simulation, started = self.svc.simulation, time.perf_counter()
        try:
            with budget.inline_budget(inline):
                if step == Step.INVENTORY:
                    simulation.sleep(LOAD_ORDER_LATENCY)
                simulation.before_effect(step)
                simulation.work(step)
                if step == Step.INVENTORY:
                    # Reserved in the checkpoint's transaction.
                    return StepResult(step, seconds=time.perf_counter() - started)
                record = effects.REMOTE_EFFECTS[step](self.svc, order)
            simulation.after_effect(step)
            return StepResult(step, record=record, seconds=time.perf_counter() - started)
        except Exception as exc:  # sorted by kind in the checkpoint
            return StepResult(step, error=exc, seconds=time.perf_counter() - started)

    def _checkpoint(self, lease: ledger.Lease, order: Order, results: list[StepResult]) -> tuple[list[Step], str]:
        """Record the phase's outcomes, and start the next phase, in one transaction.

        What it decides to send is kept until the caller has seen it commit."""
        try:
            return self._record(lease, order, results)
        except BaseException:
            self.messages, self.kept = [], []
            raise

    def _record(self, lease: ledger.Lease, order: Order, results: list[StepResult]) -> tuple[list[Step], str]:
        now = utcnow()
        rows = {Step(row.step): row for row in order.steps}
        try:
            session = self.session
            with self._transaction() as conn:
                inventory = next((r for r in results if r.step == Step.INVENTORY and r.error is None), None)
                succeeded = [r.step for r in results if r.error is None]
                for r in results:
                    if r.error is None:
                        rows[r.step].status = StepStatus.SUCCEEDED
                after = plan(order, now)
                begin = after.inline if self.slow_step is None and not after.finished else []
                if after.finished:
                    ledger.complete(conn, lease, now)
                elif _needs_invoice_number(order, begin):
                    # Paid: the fence also numbers the invoice, committed with this checkpoint.
                    number = ledger.renew_and_number_invoice(conn, lease, now, lease_seconds(*begin))
                    _numbered(order, number, now)
                else:
                    ledger.renew(conn, lease, now, lease_seconds(*begin) if begin else lease_seconds(*STEPS))
                if inventory is not None:
                    effects.reserve_inventory(conn, order)
                    self.svc.simulation.after_effect(Step.INVENTORY)
                started = ledger.advance(conn, lease, now, succeeded=succeeded, begin=begin)
                effects.record_effects(conn, [r.record for r in results if r.record is not None])
                failures = [r for r in results if r.error is not None]
                for r in results:
                    if r.error is None:
                        self._note(r, "succeeded", rows[r.step].attempts)
                outcome = self._record_failures(session, lease, order, failures, now)
                if outcome is not None:
                    return [], outcome
                if after.finished:
                    reactions.on_completed(conn, order.id, now)
                    return [], "completed"
                if begin:
                    for step, attempts in started.items():
                        rows[step].status, rows[step].attempts = StepStatus.RUNNING, attempts
                    return begin, "running"
                started_here = self._hand_over_rest(session, lease, order, now)
                if started_here:
                    return started_here, "running"
                return [], "handed_over" if self.messages else "waiting"
        except OutOfStock as exc:
            for r in results:
                rows[r.step].status = StepStatus.RUNNING
            return self._fail(lease, order, StepResult(Step.INVENTORY, error=exc, seconds=results[0].seconds))

    def _hand_over_rest(self, session: Session, lease: ledger.Lease, order: Order, now: datetime) -> list[Step]:
        """After a checkpoint that starts no next phase: hand over what is left."""
        todo = plan(order, now)
        if self.slow_step is not None:  # its own retry is this task's, by Celery's retry
            todo.waiting = [step for step in todo.waiting if step != self.slow_step]
            todo.slow = [(step, delay) for step, delay in todo.slow if step != self.slow_step]
        return self._decide(session, lease, order, todo, now)

    def _record_failures(
        self, session: Session, lease: ledger.Lease, order: Order, failures: list[StepResult], now: datetime
    ) -> str | None:
        rows = {Step(row.step): row for row in order.steps}
        for failure in failures:
            step, exc = failure.step, failure.error
            error = f"{type(exc).__name__}: {exc}"
            if isinstance(exc, PaymentDeclined):
                ledger.fail_order(session, lease, step, exc.reason, str(exc), now)
                self.kept += reactions.on_payment_declined(session, order.id)
                self._note(failure, "failed", rows[step].attempts)
                return failed(exc.reason)
            if isinstance(exc, PermanentError) or rows[step].attempts >= STEP_POLICY[step].max_attempts:
                reason = f"permanent: {exc}" if isinstance(exc, PermanentError) else error
                ledger.dead_letter(session, order.id, step, reason, now)
                rows[step].status = StepStatus.FAILED
                self._note(failure, "dead_letter", rows[step].attempts)
                continue
            delay = _retry_delay(step, rows[step].attempts, exc)
            if step == self.slow_step:
                self.retry_in, message_id = delay, self.task_id  # Celery's retry keeps the task id
                self.retry_error = error
            else:
                message_id = self._hand_over(order, step, delay)
            ledger.schedule_retry(session, order.id, step, error, now + timedelta(seconds=delay), now, message_id)
            rows[step].status, rows[step].due_at = StepStatus.RETRYING, now + timedelta(seconds=delay)
            rows[step].task_id = message_id
            self._note(failure, "retry", rows[step].attempts)
        return None

    def _fail(self, lease: ledger.Lease, order: Order, failure: StepResult) -> tuple[list[Step], str]:
        """Out of stock: the reservation rolled back with its checkpoint; fail the order."""
        self._note(failure, "failed", 1)
        now = utcnow()
        with self._transaction():
            ledger.fail_order(self.session, lease, failure.step, OutOfStock.reason, str(failure.error), now)
        return [], failed(OutOfStock.reason)


def _retry_delay(step: Step, attempt: int, exc: BaseException | None) -> float:
    delay = backoff_seconds(step, attempt)
    retry_after = getattr(exc, "retry_after", None)
    if retry_after:
        delay = max(delay, min(retry_after, STEP_POLICY[step].backoff_cap))
    return delay


def _needs_invoice_number(order: Order, begin: list[Step]) -> bool:
    return Step.INVOICE in begin and order.invoice_number is None


def _numbered(order: Order, number: int, now: datetime) -> None:
    """The run's (detached) view of the order gets the number the database now holds."""
    order.invoice_number = number
    order.invoiced_at = order.invoiced_at or now


def _number_invoice(session: Session, order: Order, begun: list[Step], now: datetime) -> None:
    """The invoice step begins in a transaction whose fence took no number (a
    continuation after a slow payment; an order invoiced before numbers existed)."""
    if _needs_invoice_number(order, begun):
        _numbered(order, invoice_numbers.take_number(session, order.id, now), now)


def _continuation(order: Order) -> TaskMessage:
    return run_task_message(order.id, run_queue(order.priority), new_uuid())


def _is_active(session: Session, order_id: str) -> bool:
    status = session.scalar(select(Order.status).where(Order.id == order_id))
    return status is not None and status not in (OrderStatus.COMPLETED, OrderStatus.FAILED, OrderStatus.CANCELLED)


def _expire(svc: ShopServices, lease: ledger.Lease) -> None:
    """Before the kill: let the redelivered run take the order at once. Best effort,
    in its own thread with a bound: the database may be what hangs."""

    def expire() -> None:
        with svc.db.begin() as session:
            ledger.expire_lease(session, lease, utcnow())

    thread = threading.Thread(target=expire, daemon=True)
    thread.start()
    thread.join(2.0)


def warm_up(svc: ShopServices) -> None:
    """Do once, before a worker forks its pool, what every child would otherwise
    repeat on its first orders: configure the mappers and import what building
    an email and an invoice needs (py-spy had a fifth of a fresh pool's samples
    there). Children inherit it all."""
    configure_mappers()
    sample = Order(id="warm-up", customer_email="warm@example.com", customer_name="", total_cents=0, currency="EUR")
    sample.created_at = utcnow()
    confirmation_email(sample, svc.mail_from, svc.public_base_url).as_bytes()
    render_invoice(sample)


_executor: ThreadPoolExecutor | None = None


def _pool() -> ThreadPoolExecutor:
    """The fan-out's threads, made on first use in each (forked) process."""
    global _executor
    if _executor is None:
        _executor = ThreadPoolExecutor(max_workers=len(FANOUT), thread_name_prefix="fanout")
    return _executor
