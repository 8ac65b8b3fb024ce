"""Dispute clocks (DOMAIN.md §2): pure table tests on the legal calendar, then the same
dates read back from a running DisputeWorkflow on the time-skipping server."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest

from models.calendar import PARIS
from models.disputes import (
    ClockKind,
    DisputeConfig,
    SlaClock,
    SlaState,
    clock_state,
    dispute_clocks,
    mediation_last_day,
    mediation_possible_until,
)


def _clocks(received: date, **cfg) -> tuple[date, date]:
    ack, answer = dispute_clocks(
        datetime(received.year, received.month, received.day, 11, tzinfo=PARIS), DisputeConfig(**cfg)
    )
    assert ack.kind is ClockKind.ACKNOWLEDGEMENT and answer.kind is ClockKind.ANSWER
    return ack.last_day, answer.last_day


@pytest.mark.parametrize(
    "received, ack_by, answer_by, why",
    [
        # DOMAIN.md example: 25 Dec holiday and Sundays out; min(16 Feb, 18 Feb).
        (date(2026, 12, 18), date(2026, 12, 31), date(2027, 2, 16), "Christmas"),
        # 1 Jan holiday and Sunday 3 Jan out; 60 days (26 Feb) < 2 months (28 Feb).
        (date(2026, 12, 28), date(2027, 1, 9), date(2027, 2, 26), "New Year"),
        # 1 May (Sat), 6 May (Ascension 2027), 8 May (Sat) out.
        (date(2027, 4, 30), date(2027, 5, 15), date(2027, 6, 29), "May holidays"),
        # 31 Dec + 2 months = 31 Feb → 28 Feb, earlier than + 60 days (1 Mar).
        (date(2026, 12, 31), date(2027, 1, 13), date(2027, 2, 28), "February, 2 months < 60 days"),
        # Leap year: 31 Dec + 2 months = 29 Feb 2028 = 31 Dec + 60 days.
        (date(2027, 12, 31), date(2028, 1, 13), date(2028, 2, 29), "leap year: 31 Feb → 29 Feb = +60 days"),
        # Received on a Saturday (not counted); Sundays and 11 Nov out.
        (date(2026, 11, 7), date(2026, 11, 20), date(2027, 1, 6), "11 Nov holiday"),
    ],
)
def test_dispute_deadline_table(received: date, ack_by: date, answer_by: date, why: str) -> None:
    assert _clocks(received) == (ack_by, answer_by), why


def test_alsace_moselle_adds_26_december_and_good_friday() -> None:
    # 26 Dec is a holiday in Alsace-Moselle: the 10th jour ouvrable moves past it.
    assert _clocks(date(2026, 12, 18), alsace_moselle=True)[0] == date(2027, 1, 2)
    # Good Friday 2027 = 26 March.
    assert _clocks(date(2027, 3, 15))[0] == date(2027, 3, 26)
    assert _clocks(date(2027, 3, 15), alsace_moselle=True)[0] == date(2027, 3, 27)


def test_answer_delays_are_configurable() -> None:
    assert _clocks(date(2026, 12, 18), answer_days=None)[1] == date(2027, 2, 18)
    assert _clocks(date(2026, 12, 18), answer_months=None)[1] == date(2027, 2, 16)
    assert _clocks(date(2026, 12, 18), answer_days=30, answer_months=None)[1] == date(2027, 1, 17)
    with pytest.raises(ValueError, match="answer_days or answer_months"):
        DisputeConfig(answer_days=None, answer_months=None)


def test_clock_due_at_is_midnight_paris_after_the_last_day() -> None:
    ack, answer = dispute_clocks(datetime(2026, 12, 18, 9, tzinfo=PARIS), DisputeConfig())
    assert ack.due_at == datetime(2027, 1, 1, 0, 0, tzinfo=PARIS)
    assert answer.due_at == datetime(2027, 2, 17, 0, 0, tzinfo=PARIS)
    # Received late in the evening UTC = next day in Paris: r is the Paris date.
    ack2, _ = dispute_clocks(datetime(2026, 12, 17, 23, 30).replace(tzinfo=PARIS).astimezone(PARIS), DisputeConfig())
    assert ack2.last_day == date(2026, 12, 30)


def test_clock_states_and_mediation_dates() -> None:
    start = datetime(2027, 1, 1, tzinfo=PARIS)
    clock = SlaClock(
        kind=ClockKind.ANSWER,
        started_at=start,
        last_day=date(2027, 1, 10),
        base_due_at=start + timedelta(days=10),
        due_at=start + timedelta(days=10),
    )
    assert clock_state(clock, start + timedelta(days=7), 0.75) is SlaState.ON_TRACK
    assert clock_state(clock, start + timedelta(days=7, hours=12), 0.75) is SlaState.AT_RISK
    assert clock_state(clock, start + timedelta(days=10), 0.75) is SlaState.BREACHED
    clock.completed_at = start + timedelta(days=9)
    assert clock_state(clock, start + timedelta(days=30), 0.75) is SlaState.MET
    # R612-5: 90 days from the complete file; L612-2: one year from the complaint.
    assert mediation_last_day(datetime(2027, 3, 1, 15, tzinfo=PARIS)) == date(2027, 5, 30)
    assert mediation_possible_until(datetime(2028, 2, 29, 10, tzinfo=PARIS)) == date(2029, 2, 28)


def test_deadlines_cli_uses_the_same_calendar() -> None:
    """``precontentieux deadlines --dispute`` and the workflow's clocks agree."""
    from starter.cli_deadlines import dispute_deadlines as cli_deadlines

    for received in (date(2026, 12, 18), date(2026, 12, 28), date(2027, 4, 30), date(2026, 12, 31)):
        out = cli_deadlines(received)
        assert (date.fromisoformat(out["acknowledge_by"]), date.fromisoformat(out["answer_by"])) == _clocks(received)
