"""B13, M10: the balance a meter-balance meter should report, and the verdict on what it
reported."""

from decimal import Decimal as D

from prepaid_core import meter_balance as mb

TOLERANCE = D("1.00")


def figures(credited="0", not_carried="0", charged="0", pending=()):
    return mb.Figures(D(credited), D(not_carried), D(charged), tuple(D(p) for p in pending))


def test_expected_is_base_plus_credit_sold_minus_not_carried_minus_consumption():
    base = mb.Base(D("30"))
    assert mb.expected_balance(base, figures("100", "0.4", "12.5")) == D("117.1")


def test_only_what_came_after_the_base_counts():
    base = mb.Base(D("50"), credited=D("100"), not_carried=D("0.4"), charged=D("40"))
    assert mb.expected_balance(base, figures("120", "0.1", "45")) == D("65.3")


def test_a_difference_within_the_tolerance_is_ok():
    verdict = mb.reconcile(D("86.5"), mb.Base(), figures("100", charged="13"), TOLERANCE)
    assert (verdict.state, verdict.expected, verdict.difference) == ("ok", D("87"), D("-0.5"))


def test_a_token_not_entered_yet_is_pending_not_an_alarm():
    verdict = mb.reconcile(D("57"), mb.Base(), figures("100", charged="13", pending=["30"]), D(1))
    assert (verdict.state, verdict.difference, verdict.pending) == ("pending", D("-30"), D("30"))


def test_any_of_several_pending_tokens_may_be_the_missing_one():
    # 20 and 5 pending, the 20 entered out of order: 5 is still missing
    numbers = figures("125", charged="25", pending=["20", "5"])
    assert mb.reconcile(D("95"), mb.Base(), numbers, TOLERANCE).state == "pending"
    assert mb.reconcile(D("90"), mb.Base(), numbers, TOLERANCE).state == "mismatch"


def test_a_meter_reporting_more_than_expected_is_a_mismatch_even_with_tokens_pending():
    verdict = mb.reconcile(D("140"), mb.Base(), figures("100", pending=["30"]), TOLERANCE)
    assert (verdict.state, verdict.difference) == ("mismatch", D("40"))


def test_a_meter_short_of_credit_without_pending_token_is_a_mismatch():
    verdict = mb.reconcile(D("60"), mb.Base(), figures("100", charged="10"), TOLERANCE)
    assert (verdict.state, verdict.difference) == ("mismatch", D("-30"))


def test_pending_sums_are_every_choice_of_tokens():
    assert mb.pending_sums([D(1), D(2), D(4)]) == {D(n) for n in range(1, 8)}


def test_many_pending_tokens_are_compared_by_their_range():
    pending = tuple(D(10) for _ in range(mb.MAX_PENDING_SUBSETS + 1))
    assert mb.explained_by_pending(D("-60"), pending, TOLERANCE)
    assert not mb.explained_by_pending(D("-200"), pending, TOLERANCE)


def test_an_accepted_balance_is_the_new_base_and_pending_tokens_still_count():
    now = figures("150", "0.2", "40", pending=["50"])
    base = mb.accepted_base(D("72"), now)
    assert mb.expected_balance(base, now) == D("122")  # 72 + the 50 still to arrive
    assert mb.reconcile(D("72"), base, now, TOLERANCE).state == "pending"
    later = figures("150", "0.2", "52")  # the token entered, 12 more used
    assert mb.reconcile(D("110"), base, later, TOLERANCE).state == "ok"
