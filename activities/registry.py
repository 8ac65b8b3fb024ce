"""Every activity the worker registers, built with its dependencies from the settings."""

from __future__ import annotations

from typing import Any

from models.settings import Settings


def build_activities(settings: Settings) -> list[Any]:
    from activities.recovery import RecoveryActivities

    recovery = RecoveryActivities.from_settings(settings)
    acts: list[Any] = list(recovery.all())
    from activities.disputes import DisputeActivities
    from activities.sending import LreActivities

    acts += LreActivities.from_settings(settings, recovery.engine).all()

    acts += DisputeActivities.from_settings(settings).all()
    return acts
