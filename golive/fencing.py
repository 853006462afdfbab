"""One writer: the fencing generation a traffic target keeps next to the weight it serves.

A paused process (a VM pause, a long GC, a partition) does not know it lost its lease, so a
lease checked in the worker can never be the safety: the pause can fall between the check and
the write. The safety is at the target (Kleppmann's fencing tokens; Kubernetes' optimistic
concurrency). The rules, in order:

1. A writer takes a generation before its first write: the target's newest plus one, stored at
   the target with the writer named (the holder). A go-live takes one when it starts; every
   rollback takes a newer one *before* it writes weight 0; so does an operator's hand.
2. Every weight write carries its generation, and the target refuses any generation but its
   newest: an older one means the writer was fenced by a newer one, a newer one was never issued.
3. Taking can be conditional (`if_generation`): it succeeds only while the target's newest is the
   one the taker read, so a newer writer that came between is never fenced by mistake.
4. A rollback that ends a named go-live (by its generation, or by its flow run) takes the target
   only while that go-live, a rollback or an operator holds it; a newer go-live is left alone.
   A rollback that names no go-live (an operator's) takes the target whoever holds it.
5. A rollback that ends a named go-live leaves the target alone, too, when another rollback holds
   it and the weight in force is already 0: that go-live is rolled back (an alert's rollback came
   first, say), and a second one would only write a second record. Short of 0, it takes it again.

The sandbox's router, the ingress-nginx canary Ingress and the Gateway API HTTPRoute each keep
the fence beside the weight and apply rules 2 and 3 themselves.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Literal

from pydantic import BaseModel, Field

__all__ = ["Fence", "FenceHolder", "TargetState", "leave_alone_because", "take_refusal", "write_refusal"]

HolderKind = Literal["go-live", "rollback", "operator"]


class FenceHolder(BaseModel):
    """Who took a generation: what kind of writer, its name as a person reads it, its run."""

    kind: HolderKind
    name: str = Field(min_length=1, max_length=200)
    run: str | None = Field(default=None, max_length=100)  # the Prefect flow run, when there is one
    at: float | None = None  # when it was taken, seconds since the epoch (the target stamps it)

    def describe(self) -> str:
        run = f" (flow run {self.run})" if self.run else ""
        if self.at is None:
            return f"{self.name}{run}"
        return f"{self.name}{run} at {datetime.fromtimestamp(self.at, timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ')}"


class Fence(BaseModel):
    """The target's newest generation and who took it (0 and nobody: never fenced)."""

    generation: int = Field(default=0, ge=0)
    holder: FenceHolder | None = None

    def describe(self) -> str:
        if self.holder is None:
            return f"generation {self.generation}"
        return f"generation {self.generation}, taken by {self.holder.describe()}"


class TargetState(BaseModel):
    """What a traffic target serves now: the weight in force and the fence beside it."""

    weight: int
    fence: Fence = Field(default_factory=Fence)
    mirror: bool = False  # users' requests copied to the canary (the shadow stage, at weight 0)


def write_refusal(fence: Fence, generation: int) -> str | None:
    """Why the target refuses a weight write carrying `generation` (rule 2); None: it accepts it."""
    if generation == fence.generation:
        return None
    if generation < fence.generation:
        return f"generation {generation} is fenced: the target is at {fence.describe()}"
    return f"generation {generation} was never issued: the target is at {fence.describe()}"


def take_refusal(fence: Fence, if_generation: int | None) -> str | None:
    """Why the target refuses a new generation taken on condition (rule 3); None: it grants it."""
    if if_generation is None or if_generation == fence.generation:
        return None
    return f"the target moved on from generation {if_generation}: it is at {fence.describe()}"


def leave_alone_because(fence: Fence, ends_generation: int | None, ends_run: str | None,
                        weight_in_force: int | None = None) -> str | None:
    """Why a rollback that ends the go-live of `ends_generation` or `ends_run` must leave the
    target alone (rules 4 and 5), the target serving `weight_in_force`; None: it takes the target.
    Naming neither ends whatever runs."""
    if (ends_generation is None and ends_run is None) or fence.holder is None:
        return None
    if fence.holder.kind == "rollback" and weight_in_force == 0:
        return f"already rolled back: weight 0 under {fence.describe()}: left alone"
    if fence.holder.kind != "go-live":
        return None
    if fence.generation == ends_generation or (ends_run is not None and fence.holder.run == ends_run):
        return None
    return f"a newer go-live holds the traffic target ({fence.describe()}): left alone"
