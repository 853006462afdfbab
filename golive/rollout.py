"""Is the canary's runtime fit to take traffic? Three triggers from the catalogue, decided from
one observation of it (and the restart count when the stage began)."""

from __future__ import annotations

from golive.models import RolloutObservation

__all__ = ["CRASH_REASONS", "image_tag", "rollout_triggers", "same_version"]

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
    if observation.desired < 1 or observation.ready < observation.desired:
        fired["canary-not-ready"] = f"{observation.ready}/{observation.desired} ready ({observation.source})"
    wrong = sorted({v for v in observation.versions if not same_version(v, release)})
    if not observation.versions or wrong:
        fired["version-mismatch"] = f"serves {', '.join(wrong) or 'no version'}, expected {release}"
    crashing = sorted(set(observation.waiting) & CRASH_REASONS)
    rose = (observation.restarts is not None and restarts_at_start is not None
            and observation.restarts > restarts_at_start)
    if crashing or rose:
        what = [f"restarts {restarts_at_start} → {observation.restarts}"] if rose else []
        fired["crash-loop"] = ", ".join(what + crashing)
    return fired
