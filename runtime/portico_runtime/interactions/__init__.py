"""Interactions of signed-in contacts, sent to a customer-insights hub and/or a CloudEvents
sink: built (model), signed (sas), queued and sent in the background (queue, sender),
counted (metrics). See docs/runtime-contract.md, "Interactions"."""

from portico_runtime.interactions.sender import Tuning
from portico_runtime.interactions.tracker import Tracker

__all__ = ["Tracker", "Tuning"]
