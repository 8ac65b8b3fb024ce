"""French formatting for letters: dates, instants, amounts (figures and words).

Babel gives the typography a French reader expects ("22 novembre 2026", "1 234,56 €",
with the narrow no-break space as thousands separator); num2words gives the amount in
words customary on a formal notice ("mille deux cent trente-quatre euros et cinquante-six
centimes").
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal

from babel.dates import format_date
from babel.numbers import format_currency, format_decimal
from num2words import num2words

from models.calendar import PARIS

LOCALE = "fr_FR"
CENT = Decimal("0.01")


def money(amount: Decimal | int | float | str, currency: str = "EUR") -> str:
    """``1 234,56 €`` (babel, fr_FR)."""
    return format_currency(Decimal(str(amount)).quantize(CENT, ROUND_HALF_UP), currency, locale=LOCALE)


def number(amount: Decimal | int | float | str) -> str:
    return format_decimal(Decimal(str(amount)).quantize(CENT, ROUND_HALF_UP), format="#,##0.00", locale=LOCALE)


_CURRENCY_WORDS = {"EUR": ("euro", "euros", "centime", "centimes")}


def money_words(amount: Decimal | int | float | str, currency: str = "EUR") -> str:
    """Amount in French words: ``mille deux cent trente-quatre euros et cinquante-six centimes``."""
    value = Decimal(str(amount)).quantize(CENT, ROUND_HALF_UP)
    units, cents = divmod(int(value * 100), 100)
    one, many, cent_one, cent_many = _CURRENCY_WORDS.get(currency, (currency, currency, "centième", "centièmes"))
    # "un million d'euros", but "deux cents euros": French elides before a vowel after million(s)/milliard(s).
    unit_words = num2words(units, lang="fr")
    unit_name = one if units in (0, 1) else many
    if units >= 1_000_000 and units % 1_000_000 == 0:
        text = f"{unit_words} d'{unit_name}"
    else:
        text = f"{unit_words} {unit_name}"
    if cents:
        text += f" et {num2words(cents, lang='fr')} {cent_one if cents == 1 else cent_many}"
    return text


def long_date(d: date | datetime | None) -> str:
    """``22 novembre 2026``; ``1er novembre 2026`` for the first of the month, as French writes it."""
    if d is None:
        return ""
    if isinstance(d, datetime):
        d = d.astimezone(PARIS).date() if d.tzinfo else d.date()
    text = format_date(d, format="d MMMM y", locale=LOCALE)
    if d.day == 1:
        text = "1er" + text[1:]
    return text


def short_date(d: date | datetime | None) -> str:
    if d is None:
        return ""
    if isinstance(d, datetime):
        d = d.astimezone(PARIS).date() if d.tzinfo else d.date()
    return format_date(d, format="dd/MM/y", locale=LOCALE)


def clock_time(dt: datetime) -> str:
    """``0 heure``, ``midi``, ``9 h 30`` — the wording used in the legal texts."""
    local = dt.astimezone(PARIS) if dt.tzinfo else dt
    if local.hour == 0 and local.minute == 0:
        return "0 heure"
    if local.hour == 12 and local.minute == 0:
        return "midi"
    if local.minute == 0:
        return f"{local.hour} heure" + ("s" if local.hour > 1 else "")
    return f"{local.hour} h {local.minute:02d}"


def instant(dt: datetime | None) -> str:
    """``15 décembre 2026 à 0 heure`` (Paris time), ``16 décembre 2026 à midi``."""
    if dt is None:
        return ""
    return f"{long_date(dt)} à {clock_time(dt)}"


def instant_with_time(dt: datetime | None) -> str:
    """A certified timestamp: ``13 novembre 2026 à 09:30 (heure de Paris)``."""
    if dt is None:
        return ""
    local = dt.astimezone(PARIS)
    return f"{long_date(local)} à {local:%H:%M} (heure de Paris)"
