"""Property: whatever bytes arrive, validation answers with a report or InvalidX12 - never another exception."""

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from x12gen import Claim837
from fedinf.claims.service import decode
from fedinf.claims.validation import Validator
from fedinf.errors import InvalidX12

BASE = Claim837().x12()
VALIDATOR = Validator()


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(BASE.encode())
    for _ in range(draw(st.integers(1, 6))):
        op = draw(st.sampled_from(["flip", "delete", "insert", "cut"]))
        i = draw(st.integers(0, max(0, len(data) - 1)))
        if op == "flip" and data:
            data[i] = draw(st.sampled_from(b"*~:^\n ABZ09\x00\xff|>"))
        elif op == "delete" and data:
            del data[i: i + draw(st.integers(1, 40))]
        elif op == "insert":
            data[i:i] = draw(st.binary(max_size=30))
        else:
            data = data[:i]
    return bytes(data)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_any_mutation_gets_a_report_or_invalid_x12(data: bytes) -> None:
    try:
        report, _ = VALIDATOR.validate(decode(data, limit=1_000_000), [])
    except InvalidX12 as exc:
        assert exc.status_code == 400 and "segment_index" in exc.details
    else:
        assert report.sha256
