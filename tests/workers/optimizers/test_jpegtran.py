"""jpegtran's re-code: every coefficient kept, and None for what it warns about."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from tests.workers.optimizers.test_jpeg import JPEGS, coefficients
from workers.optimizers import jpegtran

needs_jpegtran = pytest.mark.skipif(
    shutil.which(jpegtran.PROGRAM) is None,
    reason="deploy/install-system-packages.sh installs it",
)


@needs_jpegtran
@pytest.mark.parametrize(
    "name", ["ocrmypdf_congress.jpg", "sharp_concert.jpg", "pillow_pil_sample_cmyk.jpg"]
)
def test_recode_keeps_every_coefficient(name: str, tmp_path: Path) -> None:
    data = (JPEGS / name).read_bytes()

    recoded = jpegtran.recode(data, 30.0)

    assert recoded is not None, f"jpegtran re-codes {name}"
    before = coefficients(data, tmp_path)
    after = coefficients(recoded, tmp_path)
    for a, b in zip(before, after, strict=True):
        assert np.array_equal(a, b), f"the re-code changed a coefficient of {name}"


@needs_jpegtran
def test_a_truncated_scan_is_refused() -> None:
    data = (JPEGS / "ocrmypdf_congress.jpg").read_bytes()

    assert jpegtran.recode(data[: len(data) // 2], 30.0) is None, "a warning refuses"
