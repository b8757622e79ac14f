"""iso_time is the API's one time format; its cached fast path must equal datetime's."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from nexus.types import iso_time

# Year 1 to 9999, with fractions that round up to the next second and down past zero.
TIMES = st.floats(min_value=-62_135_596_800.0, max_value=253_402_300_798.0,
                  allow_nan=False, allow_infinity=False)


@given(TIMES)
def test_iso_time_equals_datetime_isoformat(timestamp: float) -> None:
    assert iso_time(timestamp) == datetime.fromtimestamp(timestamp, UTC).isoformat()


@given(st.integers(min_value=0, max_value=2**33),
       st.sampled_from([0.0, 5e-7, 4.999e-7, 0.9999995, 0.99999949, 1.5e-6, 0.5]))
def test_iso_time_rounds_microseconds_like_datetime(whole: int, fraction: float) -> None:
    timestamp = whole + fraction
    assert iso_time(timestamp) == datetime.fromtimestamp(timestamp, UTC).isoformat()
