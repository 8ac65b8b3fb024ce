"""The legal calendar: one set of pure functions used by the workflows, the CLI and tests.

All legal dates are Europe/Paris local dates (DOMAIN.md §1.1, §2). A *delay of N days
from date e* runs over days e+1 … e+N; its last day is L = e+N, moved forward past
Saturdays, Sundays and French public holidays when ``shift`` is on (Code de procédure
civile art. 641/642, read conservatively); it expires at 24:00 on L and its effect
happens at 00:00 on L+1.

The ``PARIS`` zone object is built at import time, outside the workflow sandbox (this
module is passed through), so workflow code can convert instants without calling the
blocked ``zoneinfo.ZoneInfo`` constructor.
"""

from __future__ import annotations

import calendar as _cal
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from functools import lru_cache
from zoneinfo import ZoneInfo

import holidays as _holidays

PARIS = ZoneInfo("Europe/Paris")


# Built once at import (about 0.1 s), outside the workflow sandbox: the ``holidays`` library
# reads gettext/locale when it builds a calendar, which the sandbox forbids at run time.
_PRELOADED_YEARS = range(2000, 2101)
_PRELOADED = {
    subdiv: frozenset(_holidays.France(years=_PRELOADED_YEARS, subdiv=subdiv).keys())
    for subdiv in (None, "57")
}


@lru_cache(maxsize=256)
def _french_holidays(year: int, subdiv: str | None) -> frozenset[date]:
    if year in _PRELOADED_YEARS:
        return frozenset(d for d in _PRELOADED[subdiv] if d.year == year)
    return frozenset(_holidays.France(years=year, subdiv=subdiv).keys())


def is_public_holiday(d: date, *, alsace_moselle: bool = False) -> bool:
    """French public holiday (Code du travail L3133-1), from the ``holidays`` library."""
    return d in _french_holidays(d.year, "57" if alsace_moselle else None)


def is_non_working_day(d: date, *, alsace_moselle: bool = False) -> bool:
    """Saturday, Sunday or public holiday: the days a delay may not end on (CPC 642)."""
    return d.weekday() >= 5 or is_public_holiday(d, alsace_moselle=alsace_moselle)


def is_jour_ouvrable(d: date, *, alsace_moselle: bool = False) -> bool:
    """Jour ouvrable: Monday to Saturday, minus public holidays."""
    return d.weekday() != 6 and not is_public_holiday(d, alsace_moselle=alsace_moselle)


def delay_last_day(start: date, days: int, *, shift: bool = True, alsace_moselle: bool = False) -> date:
    """Last day of a delay of ``days`` days counted from ``start`` (``start`` not counted)."""
    if days < 0:
        raise ValueError("a delay cannot be negative")
    last = start + timedelta(days=days)
    if shift:
        while is_non_working_day(last, alsace_moselle=alsace_moselle):
            last += timedelta(days=1)
    return last


def paris_date(instant: datetime) -> date:
    """The Paris calendar date of an aware instant (23:30 UTC on 28 Mar is 29 Mar in Paris)."""
    if instant.tzinfo is None:
        raise ValueError("instant must be timezone-aware")
    return instant.astimezone(PARIS).date()


def paris_instant(d: date, at: time = time(0, 0)) -> datetime:
    """An aware datetime at local Paris time ``at`` on date ``d``."""
    return datetime.combine(d, at, tzinfo=PARIS)


def start_of_day_after(d: date) -> datetime:
    """00:00 Paris on the day after ``d``: when a delay whose last day is ``d`` takes effect."""
    return paris_instant(d + timedelta(days=1))


def add_months(d: date, months: int) -> date:
    """Calendar months; a day that does not exist (31 Dec + 2 months) is the month's last day."""
    y, m = divmod(d.month - 1 + months, 12)
    year, month = d.year + y, m + 1
    return date(year, month, min(d.day, _cal.monthrange(year, month)[1]))


@dataclass(frozen=True)
class DelayRules:
    """The delays of a recovery regime (DOMAIN.md §1.2), all configurable per portfolio."""

    grace_days: int = 10
    suspension_days: int | None = 30  # None: no suspension (life, compulsory membership)
    termination_days: int | None = 10  # counted from the last day of the suspension delay
    life_days: int | None = None  # L132-20: termination or reduction 40 days after sending
    shift_non_working_days: bool = True
    alsace_moselle: bool = False


@dataclass(frozen=True)
class NoticeSchedule:
    """What follows from a notice sent on ``sending_date``."""

    sending_date: date
    suspension_last_day: date | None
    suspension_at: datetime | None
    termination_last_day: date | None
    termination_at: datetime | None


def grace_last_day(due: date, rules: DelayRules) -> date:
    return delay_last_day(
        due, rules.grace_days, shift=rules.shift_non_working_days, alsace_moselle=rules.alsace_moselle
    )


def earliest_notice_date(due: date, rules: DelayRules) -> date:
    """The formal notice may be sent once the grace expired: on the day after its last day."""
    return grace_last_day(due, rules) + timedelta(days=1)


def notice_schedule(sent_at: datetime, rules: DelayRules) -> NoticeSchedule:
    """Suspension and termination instants from the certified sending (deposit) instant."""
    s = paris_date(sent_at)
    kw = dict(shift=rules.shift_non_working_days, alsace_moselle=rules.alsace_moselle)
    if rules.life_days is not None:
        last = delay_last_day(s, rules.life_days, **kw)
        return NoticeSchedule(s, None, None, last, start_of_day_after(last))
    if rules.suspension_days is None:
        return NoticeSchedule(s, None, None, None, None)
    susp_last = delay_last_day(s, rules.suspension_days, **kw)
    term_last = term_at = None
    if rules.termination_days is not None:
        term_last = delay_last_day(susp_last, rules.termination_days, **kw)
        term_at = start_of_day_after(term_last)
    return NoticeSchedule(s, susp_last, start_of_day_after(susp_last), term_last, term_at)


def reinstatement_at(paid_at: datetime) -> datetime:
    """Remise en vigueur: at noon on the day after full payment (L113-3 al. 4), never shifted."""
    return paris_instant(paris_date(paid_at) + timedelta(days=1), time(12, 0))


def amount_required(
    arrears: Decimal, due_during_suspension: Decimal, fees: Decimal
) -> Decimal:
    """What stops the procedure or reinstates cover: the arrears in the notice, every
    instalment fallen due during the suspension, and the policy's recovery costs."""
    return arrears + due_during_suspension + fees


# --- Disputes (DOMAIN.md §2) -------------------------------------------------------------


def nth_jour_ouvrable_after(r: date, n: int, *, alsace_moselle: bool = False) -> date:
    """The n-th jour ouvrable after ``r`` (``r`` itself not counted)."""
    if n < 1:
        raise ValueError("n must be at least 1")
    d, count = r, 0
    while count < n:
        d += timedelta(days=1)
        if is_jour_ouvrable(d, alsace_moselle=alsace_moselle):
            count += 1
    return d


@dataclass(frozen=True)
class DisputeDeadlines:
    acknowledge_by: date  # last day; due by 24:00
    answer_by: date


def dispute_deadlines(
    received: date,
    *,
    ack_working_days: int = 10,
    answer_days: int | None = 60,
    answer_months: int | None = 2,
    alsace_moselle: bool = False,
) -> DisputeDeadlines:
    """ACPR 2022-R-01: acknowledgement within 10 jours ouvrables; answer by the earlier of
    received + 60 days and received + 2 calendar months (both configurable)."""
    candidates = []
    if answer_days is not None:
        candidates.append(received + timedelta(days=answer_days))
    if answer_months is not None:
        candidates.append(add_months(received, answer_months))
    if not candidates:
        raise ValueError("at least one answer delay is required")
    return DisputeDeadlines(
        acknowledge_by=nth_jour_ouvrable_after(received, ack_working_days, alsace_moselle=alsace_moselle),
        answer_by=min(candidates),
    )


def end_of_day(d: date) -> datetime:
    """24:00 Paris on ``d`` (= 00:00 on the next day): the instant a 'due by' date expires."""
    return start_of_day_after(d)
