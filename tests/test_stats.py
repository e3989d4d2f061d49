"""The statistics behind selections and verdicts, on constructed data with known answers."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats as sps

from entity_tracking.evaluation import accuracy
from entity_tracking.stats import (
    OutcomeError,
    adjust,
    bootstrap_rows,
    negative_mean_test,
    outcome_string,
    paired_test,
    parse_outcomes,
    sign_test,
)


def _outcomes(both: int, a_only: int, b_only: int, neither: int) -> tuple[str, str]:
    """Two outcome strings on the same records with the given concordant and discordant counts."""
    a = "1" * both + "1" * a_only + "0" * b_only + "0" * neither
    b = "1" * both + "0" * a_only + "1" * b_only + "0" * neither
    return a, b


def test_outcome_strings_round_trip_and_reject_anything_else():
    hits = torch.tensor([True, False, True, True])
    assert outcome_string(hits) == "1011"
    assert parse_outcomes("1011").tolist() == [True, False, True, True]
    with pytest.raises(OutcomeError, match="string of 0 and 1"):
        parse_outcomes("10a1")
    result = accuracy(torch.tensor([3, 4, 5]), torch.tensor([3, 0, 5]))
    assert result["outcomes"] == "101" and result["correct"] == 2


def test_paired_test_significant_in_the_claimed_direction():
    a, b = _outcomes(both=300, a_only=30, b_only=5, neither=165)  # a gains 30, loses 5
    test = paired_test(a, b, "greater")
    assert (test["a_only"], test["b_only"], test["records"]) == (30, 5, 500)
    assert test["difference"] == pytest.approx(25 / 500)
    # exact: P(X >= 30) for X ~ Binomial(35, 1/2)
    assert test["p_value"] == pytest.approx(sum(math.comb(35, k) for k in range(30, 36)) / 2**35)
    assert test["p_value"] < 1e-4


def test_paired_test_not_significant_when_the_discordant_prompts_are_few():
    a, b = _outcomes(both=300, a_only=3, b_only=1, neither=196)  # the organism minimality case: a few prompts
    test = paired_test(a, b, "greater")
    assert test["difference"] > 0
    assert test["p_value"] == pytest.approx((math.comb(4, 3) + math.comb(4, 4)) / 16)  # 0.3125
    assert test["p_value"] > 0.05


def test_paired_test_wrong_direction_is_not_significant():
    a, b = _outcomes(both=300, a_only=5, b_only=30, neither=165)
    assert paired_test(a, b, "greater")["p_value"] > 0.99
    assert paired_test(a, b, "less")["p_value"] < 1e-4
    assert paired_test(a, b, "two-sided")["p_value"] == pytest.approx(2 * paired_test(a, b, "less")["p_value"])


def test_paired_test_without_discordant_records_and_mismatched_records():
    a, b = _outcomes(both=10, a_only=0, b_only=0, neither=10)
    assert paired_test(a, b)["p_value"] == 1.0
    with pytest.raises(OutcomeError, match="same records"):
        paired_test("101", "10")
    with pytest.raises(ValueError, match="alternative"):
        paired_test("1", "0", "bigger")


def test_sign_test_counts_nonzero_differences():
    d = [-0.5] * 12 + [0.0] * 30 + [0.5] * 2
    test = sign_test(d, "less")
    assert (test["below"], test["above"], test["pairs"]) == (12, 2, 44)
    assert test["p_value"] == pytest.approx(sps.binomtest(12, 14, 0.5, alternative="greater").pvalue)
    assert sign_test(d, "greater")["p_value"] > 0.99
    assert sign_test([0.0, 0.0], "less")["p_value"] == 1.0


def test_negative_mean_test_equals_scipy_one_sample_t_test():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(40, 3, 2, generator=gen, dtype=torch.float64) + torch.tensor([[-0.8, 0.0], [0.3, -0.1], [0.0, 0]])
    x[:, 2, 1] = 0.0  # a sender that cannot reach: exactly 0 everywhere
    x[:, 2, 0] = -0.2  # no spread, negative
    out = negative_mean_test(x)
    ref = sps.ttest_1samp(x[:, :2].numpy(), 0.0, alternative="less")
    np.testing.assert_allclose(out["p"][:2].numpy(), ref.pvalue, rtol=1e-10)
    np.testing.assert_allclose(out["t"][:2].numpy(), ref.statistic, rtol=1e-10)
    assert out["p"][2, 1] == 1.0 and out["p"][2, 0] == 0.0
    assert out["p"][0, 0] < 1e-3 and out["p"][1, 0] > 0.9


def test_corrections_on_a_hand_example():
    p = np.array([0.01, 0.04, 0.03, np.nan, 0.005])
    holm = adjust(p, "holm")
    np.testing.assert_allclose(holm[[4, 0, 2, 1]], [0.02, 0.03, 0.06, 0.06])  # 4x, 3x, 2x, 1x with the max step
    assert np.isnan(holm[3])
    np.testing.assert_allclose(adjust(p, "bonferroni")[[0, 1, 2, 4]], [0.04, 0.16, 0.12, 0.02])
    np.testing.assert_allclose(adjust(p, "bh")[[4, 0, 2, 1]], [0.02, 0.02, 0.04, 0.04])
    np.testing.assert_allclose(adjust(p, "none")[[0, 1]], [0.01, 0.04])
    with pytest.raises(ValueError, match="correction"):
        adjust(p, "sidak")


def test_bootstrap_rows_are_seeded_resamples():
    a, b = bootstrap_rows(10, 5, seed=3), bootstrap_rows(10, 5, seed=3)
    assert torch.equal(a, b) and a.shape == (5, 10)
    assert int(a.min()) >= 0 and int(a.max()) <= 9
    assert not torch.equal(a, bootstrap_rows(10, 5, seed=4))
