"""Prepaid balance arithmetic (B2, B6, B7): ledger lines, recharge settlement, refunds.

An account's balance is the sum of its ledger lines (:func:`balance_of`), each a
:class:`LedgerLine` of one kind with a signed amount of 4 decimals (money is never rounded
here). :func:`available_credit` adds the preset credit still outstanding;
:func:`settle_recharge` splits a payment into preset recovery, overdraft repayment and
credit; :func:`refund`, :func:`transfer` and :func:`settle_closing` build the other lines.

See docs/design.md (Ledger and balance).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import NamedTuple

from prepaid_core.errors import PrepaidError
from prepaid_core.exact import exact_decimal

# === CONSTANTS === #

RECHARGE = "recharge"
DEDUCTION = "deduction"
REFUND = "refund"
ADJUSTMENT = "adjustment"
TRANSFER = "transfer"
PRESET_CREDIT = "preset_credit"
OVERDRAFT_REPAYMENT = "overdraft_repayment"
FIXED_CHARGE = "fixed_charge"
COMMON_AREA = "common_area"

LINE_KINDS = (
    RECHARGE,
    DEDUCTION,
    REFUND,
    ADJUSTMENT,
    TRANSFER,
    PRESET_CREDIT,
    OVERDRAFT_REPAYMENT,
    FIXED_CHARGE,
    COMMON_AREA,
)
KIND_LABELS = {
    RECHARGE: "Recharge",
    DEDUCTION: "Deduction",
    REFUND: "Refund",
    ADJUSTMENT: "Adjustment",
    TRANSFER: "Transfer",
    PRESET_CREDIT: "Preset credit recovery",
    OVERDRAFT_REPAYMENT: "Overdraft repayment",
    FIXED_CHARGE: "Fixed charge",
    COMMON_AREA: "Common-area share",
}
# +1: amount must be positive; -1: negative; 0: either sign (never zero).
KIND_SIGNS = {
    RECHARGE: 1,
    DEDUCTION: -1,
    REFUND: -1,
    ADJUSTMENT: 0,
    TRANSFER: 0,
    PRESET_CREDIT: 1,
    OVERDRAFT_REPAYMENT: 1,
    FIXED_CHARGE: -1,
    COMMON_AREA: -1,
}

MONEY_PLACES = 4
MONEY_QUANTUM = Decimal(1).scaleb(-MONEY_PLACES)
ZERO = Decimal(0).quantize(MONEY_QUANTUM)


# === ERRORS === #


class BalanceError(PrepaidError):
    """A money movement on a prepaid account is not allowed."""


class InvalidAmountError(BalanceError):
    """An amount is not a positive (or signed) exact decimal with at most 4 decimals."""


class LineKindError(BalanceError):
    """A ledger line has an unknown kind or the wrong sign for its kind."""


class RefundLimitError(BalanceError):
    """A refund is larger than what may be refunded."""


class TransferLimitError(BalanceError):
    """A transfer is larger than the balance it is taken from."""


# === HELPERS === #


def _fmt(amount: Decimal) -> str:
    """An amount as a manager reads it: at least 2 decimals, no trailing zeros beyond."""
    if amount == amount.quantize(Decimal("0.01")):
        return f"{amount.quantize(Decimal('0.01')):f}"
    return f"{amount.normalize():f}"


def money(value: object, what: str = "The amount", *, signed: bool = False) -> Decimal:
    """``value`` as a 4-decimal ``Decimal``; refuses floats, more than 4 decimals, and
    (unless ``signed``) zero or negative amounts."""
    amount = exact_decimal(value, what, InvalidAmountError, amount=True)
    rounded = amount.quantize(MONEY_QUANTUM)
    if rounded != amount:
        raise InvalidAmountError(
            f"{what} ({amount}) has more than {MONEY_PLACES} decimals; amounts are kept to "
            f"{MONEY_PLACES} decimals.",
            code="balance.too_many_decimals",
            values={"what": what, "amount": amount, "places": MONEY_PLACES},
        )
    if not signed and rounded <= 0:
        raise InvalidAmountError(
            f"{what} must be more than zero, not {_fmt(rounded)}.",
            code="balance.not_positive",
            values={"what": what, "amount": rounded},
        )
    return rounded


# === LEDGER LINES === #


@dataclass(frozen=True)
class LedgerLine:
    """One movement of an account's balance; ``amount`` is signed (see the module table)."""

    kind: str
    amount: Decimal
    memo: str = ""

    def __post_init__(self):
        if self.kind not in KIND_SIGNS:
            raise LineKindError(
                f"'{self.kind}' is not a kind of ledger line; use one of: "
                + ", ".join(LINE_KINDS)
                + "."
            )
        label = KIND_LABELS[self.kind]
        object.__setattr__(self, "amount", money(self.amount, f"{label} amount", signed=True))
        self.validate()

    def validate(self) -> None:
        label = KIND_LABELS[self.kind]
        sign = KIND_SIGNS[self.kind]
        if not self.amount:
            raise InvalidAmountError(f"A {label.lower()} line cannot be zero.")
        if sign > 0 and self.amount < 0:
            raise LineKindError(
                f"A {label.lower()} adds to the balance; its amount cannot be negative "
                f"({_fmt(self.amount)})."
            )
        if sign < 0 and self.amount > 0:
            raise LineKindError(
                f"A {label.lower()} takes from the balance; its amount must be negative "
                f"(got {_fmt(self.amount)})."
            )
        if self.kind == ADJUSTMENT and not self.memo.strip():
            raise LineKindError(
                "An adjustment needs a memo saying why it was made.", code="balance.no_memo"
            )


def balance_of(lines: Iterable[LedgerLine]) -> Decimal:
    """The balance: the sum of the ledger lines, 4 decimals."""
    return sum((line.amount for line in lines), ZERO)


def preset_outstanding(granted: Decimal, lines: Iterable[LedgerLine]) -> Decimal:
    """Preset credit not yet recovered: ``granted`` minus the ``preset_credit`` lines."""
    granted = money(granted, "The preset credit", signed=True)
    if granted < 0:
        raise InvalidAmountError(
            f"The preset credit cannot be negative ({_fmt(granted)}).",
            code="balance.preset_negative",
            values={"amount": granted},
        )
    recovered = sum((line.amount for line in lines if line.kind == PRESET_CREDIT), ZERO)
    return max(granted - recovered, ZERO)


def available_credit(balance: Decimal, preset: Decimal = ZERO) -> Decimal:
    """Credit the tenant can still use (what the meter shows, what alarms compare)."""
    return balance + preset


def overdraft_used(balance: Decimal, preset: Decimal = ZERO) -> Decimal:
    """The part of a negative balance that is not covered by preset credit."""
    return max(-(balance + preset), ZERO)


def is_exhausted(available: Decimal, overdraft_limit: Decimal = ZERO) -> bool:
    """True when supply must be cut: the available credit has reached ``-overdraft_limit``."""
    return available <= -overdraft_limit


def deduction(amount: Decimal, memo: str = "") -> LedgerLine:
    """The ledger line for consumption charged ``amount`` (>= 0 from the tariff engine)."""
    return LedgerLine(DEDUCTION, -money(amount, "The deduction"), memo)


def adjustment(amount: Decimal, memo: str) -> LedgerLine:
    """A manager's correction (either sign), with the reason in ``memo``."""
    return LedgerLine(ADJUSTMENT, money(amount, "The adjustment", signed=True), memo)


# === RECHARGE === #


class RechargeSettlement(NamedTuple):
    """How one recharge is split; ``lines`` add up to the amount paid."""

    lines: tuple[LedgerLine, ...]
    preset_recovered: Decimal
    overdraft_repaid: Decimal
    credited: Decimal
    balance_after: Decimal
    preset_after: Decimal


def settle_recharge(
    amount: Decimal, *, balance: Decimal, preset: Decimal = ZERO, memo: str = ""
) -> RechargeSettlement:
    """Split a recharge of ``amount``: preset credit first, then overdraft, then balance.

    :param balance: the account's balance before the recharge (sum of its lines).
    :param preset: preset credit still outstanding (:func:`preset_outstanding`).
    """
    paid = money(amount, "The recharge amount")
    balance = money(balance, "The balance", signed=True)
    preset = money(preset, "The preset credit", signed=True)
    if preset < 0:
        raise InvalidAmountError(
            f"The preset credit cannot be negative ({_fmt(preset)}).",
            code="balance.preset_negative",
            values={"amount": preset},
        )
    recovered = min(paid, preset)
    # Once the preset credit is recovered, what remains below zero is overdraft.
    repaid = (
        min(paid - recovered, max(-(balance + recovered), ZERO)) if recovered == preset else ZERO
    )
    credited = paid - recovered - repaid
    lines = []
    if recovered:
        lines.append(LedgerLine(PRESET_CREDIT, recovered, memo))
    if repaid:
        lines.append(LedgerLine(OVERDRAFT_REPAYMENT, repaid, memo))
    if credited:
        lines.append(LedgerLine(RECHARGE, credited, memo))
    return RechargeSettlement(
        tuple(lines), recovered, repaid, credited, balance + paid, preset - recovered
    )


# === REFUND, TRANSFER, CLOSING === #


def refundable(balance: Decimal, non_refundable: Decimal = ZERO) -> Decimal:
    """What may be paid back: the positive balance, less any amount the manager marks
    as not refundable (e.g. a promotional credit)."""
    return max(balance - non_refundable, ZERO)


def refund(
    amount: Decimal, *, balance: Decimal, non_refundable: Decimal = ZERO, memo: str = ""
) -> LedgerLine:
    """The ledger line of a refund of ``amount``, if the balance allows it (B5)."""
    value = money(amount, "The refund amount")
    limit = refundable(
        money(balance, "The balance", signed=True),
        money(non_refundable, "The non-refundable amount", signed=True),
    )
    if value > limit:
        raise RefundLimitError(
            f"A refund of {_fmt(value)} is more than the refundable balance of {_fmt(limit)}.",
            code="balance.refund_limit",
            values={"amount": value, "limit": limit},
        )
    return LedgerLine(REFUND, -value, memo)


def transfer(amount: Decimal, *, balance: Decimal, memo: str = "") -> tuple[LedgerLine, LedgerLine]:
    """Lines moving ``amount`` out of an account with ``balance`` and into another one
    (meter replacement carrying the remaining balance); they sum to zero."""
    value = money(amount, "The transfer amount")
    balance = money(balance, "The balance", signed=True)
    if value > balance:
        raise TransferLimitError(
            f"Cannot transfer {_fmt(value)}: the balance is only {_fmt(balance)}.",
            code="balance.transfer_limit",
            values={"amount": value, "limit": balance},
        )
    return LedgerLine(TRANSFER, -value, memo), LedgerLine(TRANSFER, value, memo)


def settle_closing(balance: Decimal, memo: str = "") -> tuple[LedgerLine | None, Decimal]:
    """Full settlement when an account is cancelled: ``(refund line or None, amount due)``.

    A positive balance is refunded in full; a negative one is owed by the tenant (billed by
    the caller). Preset credit still outstanding and unused is written off.
    """
    balance = money(balance, "The balance", signed=True)
    if balance > 0:
        return LedgerLine(REFUND, -balance, memo), ZERO
    return None, -balance if balance else ZERO
