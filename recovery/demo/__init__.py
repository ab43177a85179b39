"""``make demo``: a recovery campaign of three weeks, played in a few minutes on the embedded
default.

Every part starts the way ``recovery serve`` starts it (the real Prefect server, the served flows
on their schedules, the Genesys emulator with the ``mixed`` scenario, the receiver), with time
compressed by settings alone: every process is given the same ``RECOVERY_CLOCK=virtual:...``,
and the schedule intervals, the dial margin and the emulator's dial interval are chosen for
the compression. The demo then posts a campaign of signed Stripe webhooks to the receiver at
their virtual times (failures over the first days, re-deliveries, payments arriving mid-way,
card numbers where none belong), shows progress, and ends with the funnel, in the terminal and
as the Prefect table artifact ``demo-funnel``.

``python -m recovery.demo --help`` lists the knobs; ``--keep`` keeps everything running.
"""

from recovery.demo.campaign import TEST_PANS, build_campaign
from recovery.demo.funnel import compliance_label
from recovery.demo.play import run

__all__ = ["TEST_PANS", "build_campaign", "compliance_label", "run"]
