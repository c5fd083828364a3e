"""B2/B6/B7: ledger lines, recharge settlement order, refunds, transfers."""

from decimal import Decimal as D

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from prepaid_core import balance as b

money = st.integers(-10_000_000, 10_000_000).map(lambda n: D(n).scaleb(-4))
positive = st.integers(1, 10_000_000).map(lambda n: D(n).scaleb(-4))
non_negative = st.integers(0, 10_000_000).map(lambda n: D(n).scaleb(-4))


def test_line_kinds_are_constants():
    assert b.LINE_KINDS == (
        "recharge",
        "deduction",
        "refund",
        "adjustment",
        "transfer",
        "preset_credit",
        "overdraft_repayment",
        "fixed_charge",
        "common_area",
    )
    assert set(b.KIND_LABELS) == set(b.KIND_SIGNS) == set(b.LINE_KINDS)


def test_balance_is_the_sum_of_lines_to_four_decimals():
    lines = [
        b.LedgerLine(b.RECHARGE, D("100")),
        b.deduction(D("12.3456")),
        b.adjustment(D("-0.0044"), "meter test"),
        b.LedgerLine(b.REFUND, D("-10.5")),
    ]
    assert b.balance_of(lines) == D("77.15")
    assert str(b.balance_of(lines)) == "77.1500"
    assert str(b.balance_of([])) == "0.0000"
    assert lines[1].amount == D("-12.3456")


# === RECHARGE SETTLEMENT === #


def kinds(settlement):
    return [(line.kind, line.amount) for line in settlement.lines]


def test_recharge_with_nothing_outstanding_credits_the_balance():
    s = b.settle_recharge(D("50"), balance=D("3.20"))
    assert kinds(s) == [(b.RECHARGE, D("50"))]
    assert (s.preset_recovered, s.overdraft_repaid, s.credited) == (0, 0, D("50"))
    assert s.balance_after == D("53.20")


def test_recharge_repays_overdraft_first():
    s = b.settle_recharge(D("50"), balance=D("-12.5"))
    assert kinds(s) == [(b.OVERDRAFT_REPAYMENT, D("12.5")), (b.RECHARGE, D("37.5"))]
    assert s.balance_after == D("37.5")


def test_small_recharge_only_repays_part_of_the_overdraft():
    s = b.settle_recharge(D("5"), balance=D("-12.5"))
    assert kinds(s) == [(b.OVERDRAFT_REPAYMENT, D("5"))]
    assert s.balance_after == D("-7.5") and s.credited == 0


def test_seed_example_preset_credit_recovered_at_first_recharge():
    # preset 50, tenant used 30 (balance -30), then pays 100 at opening
    s = b.settle_recharge(D("100"), balance=D("-30"), preset=D("50"))
    assert kinds(s) == [(b.PRESET_CREDIT, D("50")), (b.RECHARGE, D("50"))]
    assert s.balance_after == D("70") and s.preset_after == 0
    assert b.available_credit(s.balance_after, s.preset_after) == D("70")


def test_preset_then_overdraft_then_balance():
    # preset 50 all used and 30 of overdraft: balance -80
    assert b.overdraft_used(D("-80"), D("50")) == D("30")
    assert b.available_credit(D("-80"), D("50")) == D("-30")
    s = b.settle_recharge(D("100"), balance=D("-80"), preset=D("50"))
    assert kinds(s) == [
        (b.PRESET_CREDIT, D("50")),
        (b.OVERDRAFT_REPAYMENT, D("30")),
        (b.RECHARGE, D("20")),
    ]
    assert s.balance_after == D("20") and s.preset_after == 0


def test_recharge_smaller_than_preset_only_recovers_preset():
    s = b.settle_recharge(D("20"), balance=D("-80"), preset=D("50"))
    assert kinds(s) == [(b.PRESET_CREDIT, D("20"))]
    assert (s.balance_after, s.preset_after) == (D("-60"), D("30"))
    # the overdraft in use is unchanged: the money went to the preset credit
    assert b.overdraft_used(s.balance_after, s.preset_after) == D("30")


def test_preset_outstanding_from_the_ledger():
    lines = [b.LedgerLine(b.PRESET_CREDIT, D("20")), b.deduction(D("5"))]
    assert b.preset_outstanding(D("50"), lines) == D("30")
    assert b.preset_outstanding(D("10"), lines) == 0
    with pytest.raises(b.InvalidAmountError, match="cannot be negative"):
        b.preset_outstanding(D("-1"), lines)


@settings(max_examples=300, deadline=None)
@given(amount=positive, balance=money, preset=non_negative)
def test_recharge_settlement_properties(amount, balance, preset):
    s = b.settle_recharge(amount, balance=balance, preset=preset)
    assert sum(line.amount for line in s.lines) == amount
    assert s.preset_recovered + s.overdraft_repaid + s.credited == amount
    assert all(line.amount > 0 for line in s.lines)
    assert [line.kind for line in s.lines] == [
        k
        for k, v in (
            (b.PRESET_CREDIT, s.preset_recovered),
            (b.OVERDRAFT_REPAYMENT, s.overdraft_repaid),
            (b.RECHARGE, s.credited),
        )
        if v
    ]
    assert s.balance_after == balance + amount
    assert s.preset_after == preset - s.preset_recovered >= 0
    # order: nothing repays overdraft while preset is outstanding, nothing is credited
    # while overdraft is outstanding
    if s.preset_after:
        assert s.overdraft_repaid == s.credited == 0
    if s.credited:
        assert b.overdraft_used(s.balance_after, s.preset_after) == 0
    debt_after_preset = b.overdraft_used(balance + s.preset_recovered, s.preset_after)
    expected = 0 if s.preset_after else min(debt_after_preset, amount - s.preset_recovered)
    assert s.overdraft_repaid == expected
    # the tenant's available credit rises by what was not used to recover preset credit
    assert b.available_credit(s.balance_after, s.preset_after) == (
        b.available_credit(balance, preset) + amount - s.preset_recovered
    )


# === REFUND, TRANSFER, CLOSING === #


def test_refund_within_the_refundable_balance():
    line = b.refund(D("20"), balance=D("70"))
    assert (line.kind, line.amount) == (b.REFUND, D("-20"))
    assert b.refund(D("70"), balance=D("70")).amount == D("-70")


def test_refund_more_than_the_balance_is_refused():
    with pytest.raises(b.RefundLimitError) as info:
        b.refund(D("120"), balance=D("70"))
    assert str(info.value) == "A refund of 120.00 is more than the refundable balance of 70.00."
    with pytest.raises(b.RefundLimitError, match=r"refundable balance of 0\.00"):
        b.refund(D("1"), balance=D("-5"))
    with pytest.raises(b.RefundLimitError, match=r"refundable balance of 50\.00"):
        b.refund(D("60"), balance=D("70"), non_refundable=D("20"))


def test_transfer_lines_sum_to_zero_and_are_limited_by_the_balance():
    out, into = b.transfer(D("33.3333"), balance=D("40"), memo="meter replaced")
    assert (out.kind, out.amount, into.amount) == (b.TRANSFER, D("-33.3333"), D("33.3333"))
    assert b.balance_of([out, into]) == 0
    with pytest.raises(
        b.TransferLimitError, match=r"Cannot transfer 50\.00: the balance is only 40\.00"
    ):
        b.transfer(D("50"), balance=D("40"))


def test_closing_settlement():
    line, due = b.settle_closing(D("12.5"))
    assert (line.kind, line.amount, due) == (b.REFUND, D("-12.5"), 0)
    assert b.settle_closing(D("-7.25")) == (None, D("7.25"))
    assert b.settle_closing(D("0")) == (None, 0)


def test_overdraft_limit_semantics():
    assert not b.is_exhausted(D("-19.99"), D("20"))
    assert b.is_exhausted(D("-20"), D("20"))
    assert b.is_exhausted(D("0"))
    assert not b.is_exhausted(D("0.0001"))


# === BAD INPUT === #


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda: b.settle_recharge(D("-5"), balance=D(0)), b.InvalidAmountError, "more than zero"),
        (lambda: b.settle_recharge(D("0"), balance=D(0)), b.InvalidAmountError, "more than zero"),
        (lambda: b.settle_recharge(10.5, balance=D(0)), b.InvalidAmountError, "exact amount"),
        (
            lambda: b.settle_recharge(D("1.00001"), balance=D(0)),
            b.InvalidAmountError,
            r"The recharge amount \(1.00001\) has more than 4 decimals",
        ),
        (lambda: b.settle_recharge(D("NaN"), balance=D(0)), b.InvalidAmountError, "finite"),
        (lambda: b.settle_recharge("abc", balance=D(0)), b.InvalidAmountError, "not a number"),
        (
            lambda: b.settle_recharge(D(1), balance=D(0), preset=D(-1)),
            b.InvalidAmountError,
            "preset credit cannot be negative",
        ),
        (lambda: b.refund(D("-1"), balance=D(10)), b.InvalidAmountError, "more than zero"),
        (lambda: b.LedgerLine("gift", D(1)), b.LineKindError, "'gift' is not a kind"),
        (lambda: b.LedgerLine(b.RECHARGE, D(-1)), b.LineKindError, "cannot be negative"),
        (lambda: b.LedgerLine(b.DEDUCTION, D(1)), b.LineKindError, "must be negative"),
        (lambda: b.LedgerLine(b.REFUND, D(1)), b.LineKindError, "must be negative"),
        (lambda: b.LedgerLine(b.TRANSFER, D(0)), b.InvalidAmountError, "cannot be zero"),
        (lambda: b.adjustment(D(1), " "), b.LineKindError, "needs a memo"),
        (lambda: b.deduction(D("-1")), b.InvalidAmountError, "more than zero"),
    ],
)
def test_bad_input_raises_typed_errors(call, error, message):
    with pytest.raises(error, match=message) as info:
        call()
    assert isinstance(info.value, b.BalanceError) and isinstance(info.value, ValueError)
