"""The errors of prepaid_core worded in the user's language.

prepaid_core raises its errors with an English message (for logs and its own tests), a
stable ``code`` and the ``values`` the wording needs. This table words each code once for
every add-on, through Odoo's translations; amounts come formatted in the record's currency
(¥ for CNY), dates in the user's language. An error without a known code keeps its English.
"""

from datetime import date, datetime
from decimal import Decimal

from odoo.tools import format_amount, format_date, format_datetime
from odoo.tools.translate import LazyTranslate

_lt = LazyTranslate(__name__)

ERROR_TEXTS = {
    # alarm thresholds (prepaid_core.alarm)
    "alarm.alarm2_negative": _lt("Alarm 2 (%(alarm2)s) cannot be negative."),
    "alarm.order": _lt("Alarm 1 (%(alarm1)s) must be higher than alarm 2 (%(alarm2)s)."),
    "alarm.overdraft_negative": _lt(
        "The overdraft limit (%(amount)s) cannot be negative; use 0 for no overdraft."
    ),
    "alarm.hysteresis_negative": _lt("The hysteresis (%(amount)s) cannot be negative."),
    "alarm.reminder_negative": _lt("The reminder cut cannot be negative; use 0 for no reminder."),
    "alarm.auto_reset_not_positive": _lt(
        "The overload auto-reset must be a positive duration, or empty for a manual reset."
    ),
    # money movements (prepaid_core.balance)
    "balance.too_many_decimals": _lt(
        "%(what)s (%(amount)s) has more than %(places)s decimals; amounts are kept to "
        "%(places)s decimals."
    ),
    "balance.not_positive": _lt("%(what)s must be more than zero, not %(amount)s."),
    "balance.no_memo": _lt("An adjustment needs a memo saying why it was made."),
    "balance.preset_negative": _lt("The preset credit cannot be negative (%(amount)s)."),
    "balance.refund_limit": _lt(
        "A refund of %(amount)s is more than the refundable balance of %(limit)s."
    ),
    "balance.transfer_limit": _lt("Cannot transfer %(amount)s: the balance is only %(limit)s."),
    # tariffs (prepaid_core.tariff)
    "tariff.season_start": _lt(
        "Season %(season)s starts on an impossible date (month %(month)s, day %(day)s); use a "
        "date that exists every year."
    ),
    "tariff.season_empty": _lt("Season %(season)s has no time-of-use periods."),
    "tariff.too_many_periods": _lt(
        "A day may have at most %(max)s time-of-use periods; season %(season)s has %(count)s."
    ),
    "tariff.gap": _lt(
        "The time-of-use periods of season %(season)s do not cover the whole day: nothing is "
        "set from %(start)s to %(end)s."
    ),
    "tariff.periods_overlap": _lt(
        "The time-of-use periods of season %(season)s overlap between %(start)s and %(end)s."
    ),
    "tariff.no_season": _lt("A time-of-use schedule needs at least one season."),
    "tariff.seasons_same_start": _lt("Seasons %(first)s and %(second)s start on the same day."),
    "tariff.billing_day": _lt("The billing day must be between 1 and 28, not %(day)s."),
    "tariff.billing_month": _lt("The billing month must be between 1 and 12, not %(month)s."),
    "tariff.too_many_steps": _lt(
        "A ladder may have at most %(max)s steps; tariff version %(version)s has %(count)s."
    ),
    "tariff.first_step_limit": _lt(
        "Tariff version %(version)s: the limit of step 1 (%(limit)s) must be higher than zero."
    ),
    "tariff.step_limit": _lt(
        "Tariff version %(version)s: the limit of step %(step)s (%(limit)s) must be higher "
        "than that of the step before (%(previous)s)."
    ),
    "tariff.no_price": _lt("Tariff version %(version)s has no price."),
    "tariff.price_count": _lt(
        "Tariff version %(version)s: the %(band)s band has %(count)s price(s) but the ladder "
        "has %(steps)s step(s); give one price per step."
    ),
    "tariff.price_negative": _lt(
        "Tariff version %(version)s: the %(band)s price of step %(step)s (%(price)s) cannot "
        "be negative."
    ),
    "tariff.bands_without_schedule": _lt(
        "Tariff version %(version)s prices several bands (%(bands)s) but has no time-of-use "
        "schedule saying when each applies."
    ),
    "tariff.bands_without_price": _lt(
        "Tariff version %(version)s: the time-of-use schedule uses bands without a price: "
        "%(bands)s."
    ),
    "tariff.version_dates": _lt(
        "Tariff version %(version)s ends (%(end)s) before it starts (%(start)s)."
    ),
    "tariff.timezone": _lt("%(timezone)s is not a known time zone."),
    "tariff.no_version": _lt("The tariff has no version (no prices)."),
    "tariff.version_twice": _lt("Two versions are named %(version)s."),
    "tariff.versions_same_start": _lt("Versions %(first)s and %(second)s both start on %(start)s."),
    "tariff.versions_overlap": _lt(
        "Versions %(first)s and %(second)s overlap: %(first)s runs until %(end)s, after "
        "%(second)s starts on %(start)s."
    ),
    # STS and own-format tokens (prepaid_core.sts, prepaid_core.tokens)
    "sts.digits": _lt("The %(name)s must be %(length)s digits."),
    "sts.tid_exhausted": _lt("The meter's token identifiers ran out: rekey it to a later base."),
    "sts.key_revision": _lt("The key revision is 0 to 9 and the key type 0 to 3."),
    "token.address": _lt("The meter's communication address must be 12 digits."),
    "token.amount_too_large": _lt("The amount %(amount)s is too large for a token."),
}

#: the English words prepaid_core puts in ``values`` (what an amount is, a field's name)
WORDS = {
    "The amount": _lt("The amount"),
    "The recharge amount": _lt("The recharge amount"),
    "The refund amount": _lt("The refund amount"),
    "The transfer amount": _lt("The transfer amount"),
    "The deduction": _lt("The deduction"),
    "The adjustment": _lt("The adjustment"),
    "meter number (IIN and account number)": _lt("meter number (IIN and account number)"),
    "supply group code": _lt("supply group code"),
    "tariff index": _lt("tariff index"),
}
#: the keys of ``values`` that hold such words
WORD_VALUES = frozenset({"what", "name"})

#: time-of-use bands (``band`` and ``bands`` values hold their codes)
BANDS = {
    "sharp": _lt("Sharp"),
    "peak": _lt("Peak"),
    "flat": _lt("Flat"),
    "valley": _lt("Valley"),
    "deep_valley": _lt("Deep Valley"),
}

#: values that are money, formatted in the currency given
MONEY_VALUES = frozenset({"amount", "limit", "alarm1", "alarm2"})


def error_text(env, exc, currency=None):
    """``exc`` (an error of prepaid_core) worded in ``env``'s language; amounts in
    ``currency`` when given. Its English message when its code has no wording here."""
    text = ERROR_TEXTS.get(getattr(exc, "code", ""))
    if text is None:
        return str(exc)
    values = {
        key: _value(env, key, value, currency) for key, value in getattr(exc, "values", {}).items()
    }
    # the wording's English is the msgid: env._ finds it in this add-on's translations
    return env._(text._source, **values)


def _value(env, key, value, currency):
    if isinstance(value, Decimal) and key in MONEY_VALUES and currency:
        return format_amount(env, float(value), currency)
    if isinstance(value, datetime):
        if value.hour == value.minute == value.second == 0:
            return format_date(env, value.date())
        return format_datetime(env, value, dt_format="short")
    if isinstance(value, date):
        return format_date(env, value)
    if isinstance(value, tuple):
        return ", ".join(_value(env, key, item, currency) for item in value)
    if key in WORD_VALUES and value in WORDS:
        return env._(WORDS[value])
    if key in ("band", "bands") and value in BANDS:
        return env._(BANDS[value])
    if isinstance(value, Decimal):
        return f"{value.normalize():f}" if value == value.to_integral() else f"{value:f}"
    return str(value)
