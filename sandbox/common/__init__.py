"""Pieces both sandboxes share: virtual clock, call recording, fault injection, persistence, admin routes."""

from sandbox.common.calls import CallRecorder
from sandbox.common.clock import VirtualClock
from sandbox.common.faults import Fault, FaultPlan
from sandbox.common.store import DocStore

__all__ = ["CallRecorder", "DocStore", "Fault", "FaultPlan", "VirtualClock"]
