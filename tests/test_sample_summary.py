"""SampleSummary.of and model.percentile (numpy.percentile, linear interpolation): values checked by hand."""

from __future__ import annotations

import pytest

from crm_audit.core.model import SampleSummary, percentile


def test_linear_interpolation_between_ranks() -> None:
    s = SampleSummary.of([4.0, 1.0, 3.0, 2.0])          # unsorted on purpose
    assert (s.count, s.min, s.max, s.mean) == (4, 1.0, 4.0, 2.5)
    assert s.p50 == pytest.approx(2.5) and s.p90 == pytest.approx(3.7) and s.p99 == pytest.approx(3.97)
    assert s.stdev == pytest.approx(1.2909944, abs=1e-6)


def test_one_sample_and_none() -> None:
    s = SampleSummary.of([7])
    assert s.p50 == s.p99 == 7.0 and s.stdev == 0.0
    assert percentile([10, 0, 20], 25) == pytest.approx(5.0)
    with pytest.raises(ValueError):
        SampleSummary.of([])
    with pytest.raises(ValueError):
        percentile([], 50)
