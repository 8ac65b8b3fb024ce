"""The legal calendar: table tests from DOMAIN.md and property-based tests (hypothesis)."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from models import calendar as cal

RULES = cal.DelayRules()
NO_SHIFT = cal.DelayRules(shift_non_working_days=False)
P = cal.PARIS


def paris(y, m, d, hh=0, mm=0):
    return datetime(y, m, d, hh, mm, tzinfo=P)


# --- tables ---------------------------------------------------------------------------

def test_domain_example_with_shift():
    # D = Sunday 1 Nov 2026 → grace 2–11 Nov, 11 Nov holiday → last day Thu 12 → notice Fri 13.
    assert cal.grace_last_day(date(2026, 11, 1), RULES) == date(2026, 11, 12)
    assert cal.earliest_notice_date(date(2026, 11, 1), RULES) == date(2026, 11, 13)
    s = cal.notice_schedule(paris(2026, 11, 13, 9, 30), RULES)
    assert s.suspension_last_day == date(2026, 12, 14)  # Sun 13 Dec → Mon 14 Dec
    assert s.suspension_at == paris(2026, 12, 15)
    assert s.termination_last_day == date(2026, 12, 24)
    assert s.termination_at == paris(2026, 12, 25)


def test_domain_example_without_shift():
    s = cal.notice_schedule(paris(2026, 11, 13, 9, 30), NO_SHIFT)
    assert s.suspension_at == paris(2026, 12, 14)
    assert s.termination_at == paris(2026, 12, 24)


def test_sending_date_is_the_paris_date_of_the_deposit():
    late_utc = datetime(2026, 3, 28, 23, 30, tzinfo=timezone.utc)  # already 29 Mar in Paris
    assert cal.paris_date(late_utc) == date(2026, 3, 29)
    assert cal.notice_schedule(late_utc, RULES).sending_date == date(2026, 3, 29)


@pytest.mark.parametrize(
    "sent, suspension, termination",
    [
        # month end: 31 Jan + 30 = 2 Mar 2026 (Mon) → 3 Mar; + 10 = 12 Mar (Thu) → 13 Mar
        (paris(2026, 1, 31, 10), paris(2026, 3, 3), paris(2026, 3, 13)),
        # leap year: 30 Jan 2028 + 30 = 29 Feb 2028 (Tue) → 1 Mar; + 10 = 10 Mar (Fri) → 11 Mar
        (paris(2028, 1, 30, 10), paris(2028, 3, 1), paris(2028, 3, 11)),
        # Easter Monday 6 Apr 2026: 7 Mar + 30 = 6 Apr (holiday) → 7 Apr → 8 Apr; 7 Apr + 10 = 17 Apr (Fri) → 18 Apr
        (paris(2026, 3, 7, 10), paris(2026, 4, 8), paris(2026, 4, 18)),
        # May: 1 Apr + 30 = 1 May (holiday, Fri) → Sat → Sun → Mon 4 May → 5 May;
        # 4 May + 10 = 14 May (Ascension) → 15 May (Fri) → 16 May
        (paris(2026, 4, 1, 10), paris(2026, 5, 5), paris(2026, 5, 16)),
        # Christmas: 25 Nov + 30 = 25 Dec (holiday, Fri) → 28 Dec (Mon) → 29 Dec; + 10 = 7 Jan 2027 (Thu) → 8 Jan
        (paris(2026, 11, 25, 10), paris(2026, 12, 29), paris(2027, 1, 8)),
    ],
)
def test_table_of_notice_schedules(sent, suspension, termination):
    s = cal.notice_schedule(sent, RULES)
    assert (s.suspension_at, s.termination_at) == (suspension, termination)


def test_dst_changes_keep_midnight_and_noon_local():
    # suspension on the night of the spring change (29 Mar 2026) and autumn change (25 Oct 2026)
    spring = cal.start_of_day_after(date(2026, 3, 28))
    autumn = cal.start_of_day_after(date(2026, 10, 24))
    assert spring.utcoffset() == timedelta(hours=1) and spring.astimezone(P).hour == 0
    assert autumn.utcoffset() == timedelta(hours=2) and autumn.astimezone(P).hour == 0
    r = cal.reinstatement_at(datetime(2026, 3, 28, 20, tzinfo=timezone.utc))  # 21:00 Paris on 28 Mar
    assert r == paris(2026, 3, 29, 12) and r.utcoffset() == timedelta(hours=2)


def test_reinstatement_is_noon_next_day_without_shift():
    # paid Friday 24 Dec 2026 → noon Saturday 25 Dec (holiday): no shift for reinstatement
    assert cal.reinstatement_at(paris(2026, 12, 24, 18)) == paris(2026, 12, 25, 12)


def test_life_insurance_40_days():
    rules = cal.DelayRules(suspension_days=None, termination_days=None, life_days=40)
    s = cal.notice_schedule(paris(2026, 11, 13, 9), rules)
    assert s.suspension_at is None
    assert s.termination_last_day == date(2026, 12, 23) and s.termination_at == paris(2026, 12, 24)


def test_compulsory_membership_has_no_suspension_or_termination():
    s = cal.notice_schedule(paris(2026, 11, 13, 9), cal.DelayRules(suspension_days=None, termination_days=None))
    assert s.suspension_at is None and s.termination_at is None


def test_alsace_moselle_adds_good_friday_and_st_stephen():
    # 26 Dec 2026 is a Saturday anyway; 3 Apr 2026 is Good Friday
    assert not cal.is_public_holiday(date(2026, 4, 3))
    assert cal.is_public_holiday(date(2026, 4, 3), alsace_moselle=True)
    assert cal.delay_last_day(date(2026, 3, 24), 10) == date(2026, 4, 3)
    assert cal.delay_last_day(date(2026, 3, 24), 10, alsace_moselle=True) == date(2026, 4, 7)


@pytest.mark.parametrize(
    "received, ack, answer",
    [
        (date(2026, 12, 18), date(2026, 12, 31), date(2027, 2, 16)),  # DOMAIN.md example
        (date(2026, 12, 31), date(2027, 1, 13), date(2027, 2, 28)),  # 31 Dec + 2 months = 28 Feb < +60 d (1 Mar)
        (date(2027, 4, 30), date(2027, 5, 15), date(2027, 6, 29)),  # 1 and 8 May (Saturdays), Ascension 6 May 2027
        (date(2026, 1, 15), date(2026, 1, 27), date(2026, 3, 15)),  # February: 2 months (15 Mar) < 60 days (16 Mar)
    ],
)
def test_dispute_deadlines(received, ack, answer):
    d = cal.dispute_deadlines(received)
    assert (d.acknowledge_by, d.answer_by) == (ack, answer)


# --- properties -------------------------------------------------------------------------

dates = st.dates(min_value=date(2001, 1, 1), max_value=date(2099, 6, 30))
instants = st.datetimes(
    min_value=datetime(2001, 1, 1), max_value=datetime(2099, 6, 30), timezones=st.just(timezone.utc)
)


@given(dates, st.integers(min_value=0, max_value=120))
def test_delay_never_ends_early_and_lands_on_a_working_day(start, n):
    last = cal.delay_last_day(start, n)
    assert last >= start + timedelta(days=n)
    assert not cal.is_non_working_day(last)
    # the shift is minimal: every day between the unshifted and the shifted end is non-working
    d = start + timedelta(days=n)
    while d < last:
        assert cal.is_non_working_day(d)
        d += timedelta(days=1)


@given(instants)
@settings(max_examples=300)
def test_schedule_properties(sent):
    s = cal.notice_schedule(sent, RULES)
    local = sent.astimezone(P)
    assert s.sending_date == local.date()
    # never early: suspension strictly after 30 full days, termination 10 days after that
    assert s.suspension_at >= cal.paris_instant(s.sending_date + timedelta(days=31))
    assert s.termination_at >= s.suspension_at + timedelta(days=10) - timedelta(hours=1)  # DST hour
    for at in (s.suspension_at, s.termination_at):
        assert at.astimezone(P).time() == time(0, 0)
    unshifted = cal.notice_schedule(sent, NO_SHIFT)
    assert unshifted.suspension_at <= s.suspension_at and unshifted.termination_at <= s.termination_at


@given(instants)
def test_reinstatement_noon_the_next_paris_day(paid):
    r = cal.reinstatement_at(paid)
    assert r.astimezone(P).time() == time(12, 0)
    assert r.astimezone(P).date() == paid.astimezone(P).date() + timedelta(days=1)
    assert r > paid


@given(dates)
def test_dispute_answer_is_min_of_60_days_and_two_months(received):
    d = cal.dispute_deadlines(received)
    assert d.answer_by == min(received + timedelta(days=60), cal.add_months(received, 2))
    assert cal.is_jour_ouvrable(d.acknowledge_by)
    assert d.acknowledge_by > received


@given(dates, st.integers(min_value=-24, max_value=24))
def test_add_months_clamps_to_month_end(d, months):
    r = cal.add_months(d, months)
    assert (r.year * 12 + r.month) - (d.year * 12 + d.month) == months
    assert r.day <= d.day
