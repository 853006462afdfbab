"""Is the canary's runtime fit to take traffic? Three triggers from the catalogue, decided from
observations of it (and the restart count when the stage began).

A wrong version and a crash loop are facts of one observation. Not being ready is not: as a
Kubernetes readiness probe counts `failureThreshold` failures in a row before it takes a pod out,
`RolloutWatch` raises canary-not-ready only after that many not-ready observations in a row (an
observation that could not be made at all counts as one), so one health answer slower than its
timeout on a busy machine is not a rollback."""

from __future__ import annotations

from golive.models import RolloutObservation

__all__ = ["CRASH_REASONS", "RolloutWatch", "image_tag", "rollout_triggers", "same_version"]

# Waiting reasons of a container that is failing to run, not merely starting.
CRASH_REASONS = frozenset({"CrashLoopBackOff", "RunContainerError", "CreateContainerError", "ImagePullBackOff",
                           "ErrImagePull"})


def image_tag(image: str) -> str:
    """`registry:5000/shop/spark:v1.4.0@sha256:…` → `v1.4.0`; "" when the image has no tag."""
    name = image.split("@", 1)[0]
    last = name.rsplit("/", 1)[-1]
    return last.split(":", 1)[1] if ":" in last else ""


def same_version(served: str, release: str) -> bool:
    """`v1.4.0` and `1.4.0` name the same release; anything else must match exactly."""
    return served.removeprefix("v") == release.removeprefix("v")


def rollout_triggers(observation: RolloutObservation, release: str,
                     restarts_at_start: int | None = None) -> dict[str, str]:
    """The triggers the observation raises, each with the reason in words; {} when the canary is fit.

    canary-not-ready: fewer replicas ready than asked for (or none asked for);
    version-mismatch: any canary container or answer names another version than the release;
    crash-loop: restarts rose since the stage began, or a container waits in a crash reason.
    """
    fired = {}
    if not ready(observation):
        fired["canary-not-ready"] = f"{observation.ready}/{observation.desired} ready ({observation.source})"
    wrong = sorted({v for v in observation.versions if not same_version(v, release)})
    if wrong or (not observation.versions and ready(observation)):
        fired["version-mismatch"] = f"serves {', '.join(wrong) or 'no version'}, expected {release}"
    crashing = sorted(set(observation.waiting) & CRASH_REASONS)
    rose = (observation.restarts is not None and restarts_at_start is not None
            and observation.restarts > restarts_at_start)
    if crashing or rose:
        what = [f"restarts {restarts_at_start} → {observation.restarts}"] if rose else []
        fired["crash-loop"] = ", ".join(what + crashing)
    return fired


def ready(observation: RolloutObservation) -> bool:
    return observation.desired >= 1 and observation.ready >= observation.desired


class RolloutWatch:
    """The rollout triggers of one stage, over its observations in turn."""

    def __init__(self, release: str, failure_threshold: int = 3):
        self.release = release
        self.failure_threshold = failure_threshold
        self.restarts_at_start: int | None = None
        self.not_ready_in_a_row = 0
        self.started = False

    def observe(self, observation: RolloutObservation | None) -> dict[str, str]:
        """The triggers that fire now; the first observation also sets the restarts to compare with."""
        if not self.started and observation is not None:
            self.restarts_at_start, self.started = observation.restarts, True
        if observation is None:
            fired = {"canary-not-ready": "its runtime could not be observed"}
        else:
            fired = rollout_triggers(observation, self.release, self.restarts_at_start)
        self.not_ready_in_a_row = self.not_ready_in_a_row + 1 if "canary-not-ready" in fired else 0
        if "canary-not-ready" in fired:
            if self.not_ready_in_a_row < self.failure_threshold:
                del fired["canary-not-ready"]
            else:
                fired["canary-not-ready"] += f" ({self.not_ready_in_a_row} observations in a row)"
        return fired
