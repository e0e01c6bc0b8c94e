"""The order pipeline: one durable run per order, its steps checkpointed in the ledger.

- ``ledger``: the one owner of order status, the run's lease and step statuses.
- ``effects``: the five side effects and their stable keys.
- ``budget``: how long a step may take inline, and the kill at its hard limit.
- ``run``: the durable run and the slow-path step, built from the three above.
- ``reactions``: what follows an outcome (completed, declined, cancelled).
- ``recovery``: the sweep that re-dispatches runs whose owner vanished.
"""
