"""G6 tokens, R10 ordering, X1 bad input: vectors, replay, wrong meter, tamper, fuzz."""

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from prepaid_core import tokens
from prepaid_core.tokens import (
    Token,
    TokenAcceptor,
    TokenAmountError,
    TokenAuthError,
    TokenError,
    TokenFormatError,
    TokenKind,
    TokenReplayError,
    WrongMeterError,
    decode_keypad_token,
    decode_token,
    derive_meter_key,
    encode_keypad_token,
    encode_token,
    format_keypad_token,
    issue_keypad_token,
    issue_token,
    token_from_text,
    token_to_text,
)

VENDING_KEY = bytes(range(32))
METER = "000012345678"
OTHER = "000012345679"


@pytest.fixture(scope="module")
def key():
    return derive_meter_key(VENDING_KEY, METER)


# === VECTORS === #


def test_key_derivation_vector(key):
    assert len(key) == 32
    assert key != derive_meter_key(VENDING_KEY, OTHER)
    assert key != derive_meter_key(bytes(range(1, 33)), METER)
    assert key.hex() == "6fe74549435ec27976b3c46c96949ff4d02f71a5c62baf80d6a0e52a1ab706b5"


def test_binary_token_vector(key):
    data = encode_token(key, Token(METER, TokenKind.CREDIT, Decimal("50"), 1))
    assert len(data) == 40
    assert token_to_text(data) == "AEAAAAASGRLHQAAAAAAQAAAAAAAAPIJAAAAAAAELVIGSTK6LR7RW2LX5MFDIASDV"
    assert data[:24].hex() == "010000001234567800000001000000000007a12000000000"


@pytest.mark.parametrize(
    ("kind", "amount", "sequence", "digits"),
    [
        (TokenKind.CREDIT, Decimal("50"), 1, "63146817762823736135"),
        (TokenKind.CREDIT, Decimal("1638.3"), 2, "40523131666264509305"),
        (TokenKind.CLEAR_CREDIT, Decimal("0"), 3, "54678232893995975172"),
        (TokenKind.SET_PRICE, Decimal("0.5783"), 4, "10322505095968100954"),
        (TokenKind.CLEAR_TAMPER, Decimal("0"), 262143, "62104180132239932736"),
    ],
)
def test_keypad_token_vectors(key, kind, amount, sequence, digits):
    assert encode_keypad_token(key, Token(METER, kind, amount, sequence)) == digits
    token = decode_keypad_token(key, METER, digits)
    assert (token.kind, token.amount, token.sequence) == (kind, amount, sequence)


def test_issue_helpers_match_encoders(key):
    assert issue_token(VENDING_KEY, METER, TokenKind.CREDIT, Decimal("50"), 1) == encode_token(
        key, Token(METER, TokenKind.CREDIT, Decimal("50"), 1)
    )
    assert issue_keypad_token(VENDING_KEY, METER, TokenKind.CREDIT, Decimal("50"), 1) == (
        "63146817762823736135"
    )


# === ROUND TRIPS === #


@pytest.mark.parametrize(
    ("kind", "amount"),
    [
        (TokenKind.CREDIT, Decimal("0.0001")),
        (TokenKind.CREDIT, Decimal("123456.7891")),
        (TokenKind.CLEAR_CREDIT, Decimal(0)),
        (TokenKind.SET_PRICE, Decimal("0.5783")),
        (TokenKind.CLEAR_TAMPER, Decimal(0)),
    ],
)
def test_binary_round_trip(key, kind, amount):
    token = Token(METER, kind, amount, 4242)
    data = encode_token(key, token)
    assert decode_token(key, METER, data) == token
    assert decode_token(key, METER, token_from_text(token_to_text(data))) == token
    assert token_from_text(token_to_text(data).lower()) == data


@pytest.mark.parametrize(
    ("kind", "amount"),
    [
        (TokenKind.CREDIT, Decimal("0.01")),
        (TokenKind.CREDIT, Decimal("163.83")),
        (TokenKind.CREDIT, Decimal("1638.3")),
        (TokenKind.CREDIT, Decimal("16383")),
        (TokenKind.CREDIT, Decimal("163830")),
        (TokenKind.SET_PRICE, Decimal("0.5783")),
        (TokenKind.SET_PRICE, Decimal("1638.3")),
        (TokenKind.CLEAR_CREDIT, Decimal(0)),
        (TokenKind.CLEAR_TAMPER, Decimal(0)),
    ],
)
def test_keypad_round_trip(key, kind, amount):
    for sequence in (1, 2, tokens.KEYPAD_MAX_SEQUENCE):
        digits = encode_keypad_token(key, Token(METER, kind, amount, sequence))
        assert len(digits) == 20 and digits.isdigit()
        assert decode_keypad_token(key, METER, format_keypad_token(digits)) == Token(
            METER, kind, amount, sequence
        )


@pytest.mark.parametrize(
    ("kind", "amount"),
    [
        (TokenKind.CREDIT, Decimal("163.84")),  # needs 0.01 resolution above 163.83
        (TokenKind.CREDIT, Decimal("163831")),  # above the range
        (TokenKind.CREDIT, Decimal("0.001")),  # below the resolution
        (TokenKind.SET_PRICE, Decimal("0.00001")),
        (TokenKind.CREDIT, Decimal(0)),
        (TokenKind.CREDIT, Decimal("-5")),
        (TokenKind.CLEAR_CREDIT, Decimal("1")),
    ],
)
def test_keypad_refuses_inexact_or_invalid_amounts(key, kind, amount):
    with pytest.raises(TokenAmountError):
        encode_keypad_token(key, Token(METER, kind, amount, 1))


@pytest.mark.parametrize(
    "amount", [Decimal("0.00001"), Decimal("-1"), Decimal(0), Decimal("NaN"), 1.5]
)
def test_binary_refuses_invalid_amounts(key, amount):
    with pytest.raises(TokenAmountError):
        encode_token(key, Token(METER, TokenKind.CREDIT, amount, 1))


@pytest.mark.parametrize("sequence", [0, -1, 2**32, True])
def test_binary_refuses_bad_sequence(key, sequence):
    with pytest.raises(TokenFormatError):
        encode_token(key, Token(METER, TokenKind.CREDIT, Decimal(1), sequence))


def test_keypad_refuses_sequence_beyond_18_bits(key):
    with pytest.raises(TokenFormatError):
        encode_keypad_token(
            key, Token(METER, TokenKind.CREDIT, Decimal(1), tokens.KEYPAD_MAX_SEQUENCE + 1)
        )


@pytest.mark.parametrize("address", ["12345678901", "1234567890123", "00001234567a", 12])
def test_bad_meter_address(address):
    with pytest.raises(TokenFormatError):
        derive_meter_key(VENDING_KEY, address)


def test_short_keys_refused():
    with pytest.raises(TokenError):
        derive_meter_key(b"short", METER)
    with pytest.raises(TokenError):
        decode_token(b"short", METER, bytes(40))


# === R10: ORDER, REPLAY === #


def test_two_tokens_same_minute_are_distinct_and_ordered(key):
    first = issue_token(VENDING_KEY, METER, TokenKind.CREDIT, Decimal("20"), 7)
    second = issue_token(VENDING_KEY, METER, TokenKind.CREDIT, Decimal("20"), 8)
    assert first != second
    kp1 = issue_keypad_token(VENDING_KEY, METER, TokenKind.CREDIT, Decimal("20"), 7)
    kp2 = issue_keypad_token(VENDING_KEY, METER, TokenKind.CREDIT, Decimal("20"), 8)
    assert kp1 != kp2
    acceptor = TokenAcceptor(key, METER, last_sequence=6)
    assert acceptor.accept(first).sequence == 7
    assert acceptor.accept(second).sequence == 8
    assert acceptor.last_sequence == 8


@pytest.mark.parametrize("form", ["binary", "keypad"])
def test_replay_rejected_and_changes_nothing(key, form):
    issue = issue_token if form == "binary" else issue_keypad_token
    acceptor = TokenAcceptor(key, METER)
    token = issue(VENDING_KEY, METER, TokenKind.CREDIT, Decimal("10"), 3)
    assert acceptor.accept(token).amount == Decimal("10")
    with pytest.raises(TokenReplayError):
        acceptor.accept(token)
    older = issue(VENDING_KEY, METER, TokenKind.CREDIT, Decimal("10"), 2)
    with pytest.raises(TokenReplayError):
        acceptor.accept(older)
    assert acceptor.last_sequence == 3


def test_one_sequence_space_across_forms(key):
    acceptor = TokenAcceptor(key, METER)
    acceptor.accept(issue_keypad_token(VENDING_KEY, METER, TokenKind.CREDIT, Decimal(5), 10))
    with pytest.raises(TokenReplayError):
        acceptor.accept(issue_token(VENDING_KEY, METER, TokenKind.CREDIT, Decimal(5), 10))
    assert acceptor.accept(issue_token(VENDING_KEY, METER, TokenKind.CREDIT, Decimal(5), 11))


def test_failed_token_does_not_move_sequence(key):
    acceptor = TokenAcceptor(key, METER, last_sequence=1)
    bad = bytearray(issue_token(VENDING_KEY, METER, TokenKind.CREDIT, Decimal(5), 9))
    bad[-1] ^= 1
    with pytest.raises(TokenAuthError):
        acceptor.accept(bytes(bad))
    assert acceptor.last_sequence == 1


# === WRONG METER, TAMPER === #


def test_wrong_meter_binary(key):
    data = issue_token(VENDING_KEY, OTHER, TokenKind.CREDIT, Decimal(5), 1)
    with pytest.raises(WrongMeterError):
        decode_token(key, METER, data)
    # the other meter's token re-labelled for this meter: MAC fails
    relabelled = bytearray(data)
    relabelled[2:8] = bytes.fromhex(METER)
    with pytest.raises(TokenAuthError):
        decode_token(key, METER, bytes(relabelled))


def test_wrong_meter_keypad(key):
    digits = issue_keypad_token(VENDING_KEY, OTHER, TokenKind.CREDIT, Decimal(5), 1)
    with pytest.raises(TokenAuthError):
        decode_keypad_token(key, METER, digits)


def test_every_bit_flip_of_binary_token_is_rejected(key):
    data = issue_token(VENDING_KEY, METER, TokenKind.CREDIT, Decimal("50"), 1)
    for bit in range(len(data) * 8):
        flipped = bytearray(data)
        flipped[bit // 8] ^= 1 << (bit % 8)
        with pytest.raises(TokenError):
            decode_token(key, METER, bytes(flipped))


def test_tampered_amount_rejected(key):
    data = bytearray(issue_token(VENDING_KEY, METER, TokenKind.CREDIT, Decimal("5"), 1))
    data[12:20] = (5000 * 10_000).to_bytes(8, "big")
    with pytest.raises(TokenAuthError):
        decode_token(key, METER, bytes(data))


def test_keypad_digit_changes_rejected(key):
    digits = issue_keypad_token(VENDING_KEY, METER, TokenKind.CREDIT, Decimal("50"), 1)
    for position in range(20):
        for delta in (1, 5):
            changed = (
                digits[:position]
                + str((int(digits[position]) + delta) % 10)
                + digits[position + 1 :]
            )
            with pytest.raises(TokenError):
                decode_keypad_token(key, METER, changed)


def test_keypad_bit_flips_rejected(key):
    value = int(issue_keypad_token(VENDING_KEY, METER, TokenKind.CREDIT, Decimal("50"), 1))
    for bit in range(66):
        with pytest.raises(TokenError):
            decode_keypad_token(key, METER, str(value ^ (1 << bit)).zfill(20))


@pytest.mark.parametrize(
    "digits", ["", "1234", "9" * 20, "7" * 20 + "1", "abcdefghijabcdefghij", "\uff11" * 20]
)
def test_keypad_malformed(key, digits):
    with pytest.raises(TokenFormatError):
        decode_keypad_token(key, METER, digits)


@pytest.mark.parametrize("text", ["!!!", "A" * 63, "0189", 42])
def test_text_malformed(text):
    with pytest.raises(TokenFormatError):
        data = token_from_text(text)
        if len(data) != 40:
            raise TokenFormatError("length")


# === FUZZ === #


@settings(max_examples=300, deadline=None)
@given(st.binary(min_size=0, max_size=64))
def test_fuzz_binary_decoder_only_typed_errors(key, data):
    try:
        decode_token(key, METER, data)
    except TokenError:
        pass


@settings(max_examples=200, deadline=None)
@given(st.binary(min_size=40, max_size=40))
def test_fuzz_binary_random_40_bytes_never_accepted(key, data):
    with pytest.raises(TokenError):
        decode_token(key, METER, data)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=30) | st.from_regex(r"\d{20}", fullmatch=True))
def test_fuzz_keypad_decoder_only_typed_errors(key, text):
    try:
        token = decode_keypad_token(key, METER, text)
    except TokenError:
        return
    # A random 20-digit string authenticates with probability 2**-30: if it ever does,
    # the result must at least be a well-formed token.
    assert isinstance(token.kind, TokenKind) and token.sequence >= 1


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=80))
def test_fuzz_text_decoder_only_typed_errors(text):
    try:
        token_from_text(text)
    except TokenError:
        pass


@settings(max_examples=150, deadline=None)
@given(
    kind=st.sampled_from([TokenKind.CREDIT, TokenKind.SET_PRICE]),
    exponent=st.integers(0, 3),
    mantissa=st.integers(1, 16383),
    sequence=st.integers(1, tokens.KEYPAD_MAX_SEQUENCE),
)
def test_fuzz_keypad_round_trip(key, kind, exponent, mantissa, sequence):
    unit = Decimal("0.01") if kind == TokenKind.CREDIT else Decimal("0.0001")
    amount = mantissa * 10**exponent * unit
    digits = encode_keypad_token(key, Token(METER, kind, amount, sequence))
    assert decode_keypad_token(key, METER, digits) == Token(METER, kind, amount, sequence)


# === MALFORMED INPUT: ONLY TOKEN ERRORS (X1) === #

KEY = derive_meter_key(VENDING_KEY, METER)
ARABIC_DIGITS = "\u0660\u0661\u0662\u0663\u0664\u0665\u0666\u0667\u0668\u0669"


@pytest.mark.parametrize(
    "address", [ARABIC_DIGITS + "\u0660\u0661", "\uff10" * 12, "00001234567\u0969", 12345678]
)
def test_addresses_are_ascii_digits_only(address):
    with pytest.raises(TokenFormatError):
        derive_meter_key(VENDING_KEY, address)  # was UnicodeEncodeError
    with pytest.raises(TokenFormatError):
        tokens.issue_token(VENDING_KEY, address, TokenKind.CREDIT, Decimal(1), 1)
    with pytest.raises(TokenFormatError):
        encode_token(KEY, Token(address, TokenKind.CREDIT, Decimal(1), 1))  # was ValueError


@pytest.mark.parametrize(
    "digits",
    [
        ARABIC_DIGITS * 2,  # str.isdigit() is true for these
        "1234 5678 9012 3456 789\u0969",
        "1234\u00a05678\u00a09012\u00a03456\u00a07890",  # no-break spaces
        "1" * 21,
        "1" * 10**7,
        None,
        12345678901234567890,
    ],
)
def test_keypad_digits_are_ascii_only(digits):
    with pytest.raises(TokenFormatError):
        decode_keypad_token(KEY, METER, digits)
    with pytest.raises(TokenFormatError):
        format_keypad_token(digits)


@pytest.mark.parametrize(
    "amount",
    [
        Decimal("1e999999"),  # was decimal.Overflow
        Decimal("1e-999999"),
        Decimal("1e19"),
        Decimal("0.00001"),
        Decimal("1." + "0" * 5000 + "1"),
        2**200,
        1.5,
        "12.5",
        Decimal("sNaN"),
        Decimal("-Infinity"),
        None,
    ],
)
def test_bad_amounts_raise_token_amount_errors(amount):
    for encode in (encode_token, encode_keypad_token):
        with pytest.raises(TokenAmountError):
            encode(KEY, Token(METER, TokenKind.CREDIT, amount, 1))


@pytest.mark.parametrize(
    ("kind", "sequence"),
    [
        (7, 1),
        (-1, 1),
        pytest.param(10**5000, 1, id="huge-kind"),  # the enum's message raised ValueError
        (True, 1),
        ("credit", 1),
        (1.0, 1),
        (None, 1),
        (0, 2**40),
        (0, 1.0),
    ],
)
def test_bad_kinds_and_sequences_raise_token_format_errors(kind, sequence):
    with pytest.raises(TokenFormatError):
        encode_token(KEY, Token(METER, kind, Decimal(1), sequence))
    with pytest.raises(TokenFormatError):
        tokens.issue_keypad_token(VENDING_KEY, METER, kind, Decimal(1), sequence)


@pytest.mark.parametrize("data", [5, "AAAA", None, b"\x00" * 39, bytearray(41)])
def test_token_to_text_refuses_what_is_not_a_token(data):
    with pytest.raises(TokenFormatError):
        token_to_text(data)  # token_to_text(5) gave the text of 5 zero bytes


@pytest.mark.parametrize(
    "text", ["ſ" * 64, "A" * 10**7, "A" * 63, "A" * 65, "A\u3000" * 64, b"A" * 64]
)
def test_token_from_text_refuses_what_is_not_base32(text):
    with pytest.raises(TokenFormatError):
        token_from_text(text)  # "ſ".upper() is "S": was read as base32


def test_exact_amounts_still_encode():
    for amount in (Decimal("0.0001"), Decimal("922337203685477.5807"), Decimal("5.10000000")):
        data = encode_token(KEY, Token(METER, TokenKind.CREDIT, amount, 1))
        assert decode_token(KEY, METER, data).amount == amount
    for amount in (Decimal("0.01"), Decimal("163830"), Decimal("1638300E-1")):
        digits = encode_keypad_token(KEY, Token(METER, TokenKind.CREDIT, amount, 9))
        assert decode_keypad_token(KEY, METER, digits).amount == amount


_ANY = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    st.decimals(),
    st.builds(lambda e, m: Decimal(f"{m}E{e}"), st.integers(-(10**6), 10**6), st.integers(0, 99)),
    st.text(max_size=70),
    st.text(alphabet="0123456789 -\u0660\u0969\uff10", max_size=30),
    st.binary(max_size=50),
    st.sampled_from(list(TokenKind)),
)
_FUZZ = settings(max_examples=300, deadline=None)


@_FUZZ
@given(
    address=st.just(METER) | _ANY,
    kind=st.sampled_from(list(TokenKind)) | _ANY,
    amount=st.decimals(places=4, min_value=0, max_value=10**6) | _ANY,
    sequence=st.integers(1, 2**18) | _ANY,
)
def test_fuzz_encoders_raise_only_token_errors(address, kind, amount, sequence):
    token = Token(address, kind, amount, sequence)
    for encode in (encode_token, encode_keypad_token):
        try:
            data = encode(KEY, token)
        except TokenError:
            continue
        assert TokenAcceptor(KEY, METER).check(data) == Token(
            METER, TokenKind(kind), Decimal(amount), sequence
        )


@_FUZZ
@given(data=st.binary(min_size=40, max_size=40) | _ANY, address=st.just(METER) | _ANY)
def test_fuzz_binary_decoder_raises_only_token_errors(data, address):
    for decode in (decode_token, decode_keypad_token):
        try:
            decode(KEY, address, data)
        except TokenError:
            pass
    for text_form in (token_from_text, format_keypad_token, token_to_text):
        try:
            text_form(data)
        except TokenError:
            pass


@_FUZZ
@given(
    token=st.builds(
        Token,
        st.just(METER),
        st.sampled_from([TokenKind.CLEAR_CREDIT, TokenKind.CLEAR_TAMPER]),
        st.just(Decimal(0)),
        st.integers(1, tokens.KEYPAD_MAX_SEQUENCE),
    ),
    position=st.integers(0, 39),
    flip=st.integers(1, 255),
)
def test_fuzz_mutated_tokens_never_pass(token, position, flip):
    data = bytearray(encode_token(KEY, token))
    assert decode_token(KEY, METER, bytes(data)) == token
    data[position] ^= flip
    with pytest.raises(TokenError):
        decode_token(KEY, METER, bytes(data))
    digits = encode_keypad_token(KEY, token)
    assert decode_keypad_token(KEY, METER, format_keypad_token(digits)) == token
