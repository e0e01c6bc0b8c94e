"""FAULTS parsing and the simulated faults."""

from __future__ import annotations

import pytest

from shop.errors import PermanentError, TransientError
from shop.integrations.faults import Simulation, parse_faults
from shop.states import Step


def test_faults_spec_is_parsed_per_step_and_kind() -> None:
    faults = parse_faults("payment:transient=0.3, email:hang=0.05,invoice:crash=0.02,payment:permanent=1")
    assert faults == {
        Step.PAYMENT: {"transient": 0.3, "permanent": 1.0},
        Step.EMAIL: {"hang": 0.05},
        Step.INVOICE: {"crash": 0.02},
    }


@pytest.mark.parametrize(
    "spec", ["payment", "payment:sluggish=0.1", "parcel:transient=0.1", "email:hang=2", "email:crash=x"]
)
def test_bad_faults_spec_is_refused_with_a_readable_message(spec: str) -> None:
    with pytest.raises(ValueError, match="bad FAULTS entry"):
        parse_faults(spec)


def test_certain_faults_always_fire_before_the_effect() -> None:
    with pytest.raises(TransientError):
        Simulation(0, parse_faults("payment:transient=1")).before_effect(Step.PAYMENT)
    with pytest.raises(PermanentError):
        Simulation(0, parse_faults("email:permanent=1")).before_effect(Step.EMAIL)
    Simulation(0, parse_faults("email:permanent=1")).before_effect(Step.PAYMENT)  # other steps untouched


def test_forked_processes_draw_different_fault_sequences() -> None:
    import os

    simulation = Simulation(0, parse_faults("payment:crash=0.5"))
    reader, writer = os.pipe()
    draws = []
    for _ in range(2):
        pid = os.fork()
        if pid == 0:  # the child reports its first draws and leaves at once
            os.write(writer, repr([simulation.rng.random() for _ in range(3)]).encode().ljust(200))
            os._exit(0)
        os.waitpid(pid, 0)
        draws.append(os.read(reader, 200).strip())
    assert draws[0] != draws[1]
