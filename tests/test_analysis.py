"""The report's text helpers: mean ± std strings and Markdown tables sized for the PDF."""

from __future__ import annotations

from report import analysis

NBSP = "\u00a0"


def test_table_widths_give_every_column_its_longest_word():
    columns = [["configuration", "2c: sigmoid, uniform init", "3c: + momentum (Task 3 net)"],
               ["parameters", "50,880", "101,760"],
               ["best val. loss", f"0.2934 ±{NBSP}0.0067", f"0.1169 ±{NBSP}0.0023"]]
    widths = analysis.table_widths(columns, budget=40)
    assert widths[0] >= len("configuration") and widths[1] >= len("parameters")
    assert widths[2] >= len(f"±{NBSP}0.0067")
    assert abs(sum(widths) - 40) <= len(columns)  # the spare room is shared out (rounding aside)
    # the column whose entries are longest beyond their longest word gets the most spare room
    least = [13, 10, 8]
    spare = [w - m for w, m in zip(widths, least)]
    assert spare[0] > spare[2] > spare[1] == 0


def test_table_widths_without_room_fall_back_to_the_longest_words():
    columns = [["a b", "unbreakable-word"], ["c", "another-long-word"]]
    assert analysis.table_widths(columns, budget=10) == [16, 17]


def test_markdown_table_separator_uses_the_widths():
    rows = [dict(name="3c: + momentum (Task 3 net)",
                 acc=f"96.20 ±{NBSP}0.44{NBSP}%")]
    table = analysis.markdown_table(rows, {"name": "configuration", "acc": "best val. accuracy"})
    header, separator, row = table.split("\n")
    assert header == "| configuration | best val. accuracy |"
    dashes = [len(part) for part in separator.strip("|").split("|")]
    assert dashes == analysis.table_widths([["configuration", rows[0]["name"]],
                                           ["best val. accuracy", rows[0]["acc"]]])
    assert row == f"| 3c: + momentum (Task 3 net) | 96.20 ±{NBSP}0.44{NBSP}% |"


# ------------------------------------------------------------------------------------------------
# Tests across seeds
# ------------------------------------------------------------------------------------------------

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from scipy import stats  # noqa: E402


def test_welch_difference_is_scipys_with_its_confidence_interval():
    a, b = [0.9611, 0.9613, 0.9628, 0.9593, 0.9619], [0.9647, 0.9569, 0.9644, 0.9639, 0.9615]
    d = analysis.difference(a, b, paired=False)
    result = stats.ttest_ind(b, a, equal_var=False)
    low, high = result.confidence_interval(0.95)
    assert d["test"] == "Welch's t-test" and d["seeds"] == [5, 5]
    assert d["diff"] == pytest.approx(np.mean(b) - np.mean(a))
    assert (d["ci_low"], d["ci_high"], d["p_value"]) == pytest.approx((low, high, result.pvalue))
    assert d["ci_low"] < d["diff"] < d["ci_high"]


def test_paired_difference_is_a_t_test_of_the_per_seed_differences():
    a, b = np.array([0.9591, 0.9583, 0.9611, 0.9605, 0.9612]), np.array([0.9611, 0.9613, 0.9628, 0.9593, 0.9619])
    d = analysis.difference(a, b, paired=True)
    one_sample = stats.ttest_1samp(b - a, 0.0)
    assert d["test"] == "paired t-test"
    assert d["p_value"] == pytest.approx(one_sample.pvalue)
    low, high = one_sample.confidence_interval(0.95)
    assert (d["ci_low"], d["ci_high"]) == pytest.approx((low, high))


def test_welch_difference_against_a_side_without_spread_is_the_one_sample_interval():
    """100 % training accuracy on every seed: no spread on one side, no warning, and the interval
    is the other side's one-sample t-interval."""
    import warnings
    full, partial = np.ones(5), np.array([0.99665, 0.9963, 0.9947, 0.99475, 0.992])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        d = analysis.difference(full, partial, paired=False)
    low, high = stats.ttest_1samp(partial - 1.0, 0.0).confidence_interval(0.95)
    assert (d["ci_low"], d["ci_high"]) == pytest.approx((low, high))


def test_difference_without_spread_and_with_too_few_seeds():
    same = analysis.difference([1.0, 1.0], [1.0, 1.0], paired=False)
    assert (same["diff"], same["ci_low"], same["ci_high"], same["p_value"]) == (0.0, 0.0, 0.0, 1.0)
    apart = analysis.difference([0.0, 0.0], [1.0, 1.0], paired=True)
    assert (apart["diff"], apart["p_value"]) == (1.0, 0.0)
    with pytest.raises(ValueError, match="at least 2 seeds"):
        analysis.difference([1.0], [1.0, 2.0], paired=False)
    with pytest.raises(ValueError, match="same seeds"):
        analysis.difference([1.0, 2.0, 3.0], [1.0, 2.0], paired=True)


def test_seeds_are_shared_only_by_the_same_layers_and_initialisation():
    from helpers import TrainConfig
    c2c = TrainConfig()
    c3a = c2c.replace(use_improved_weight_init=True)
    c3b = c3a.replace(use_improved_sigmoid=True)
    c3c = c3b.replace(use_momentum=True)
    assert not analysis.seeds_shared(c2c, c3a)        # other initial weights, other batch order
    assert analysis.seeds_shared(c3a, c3b) and analysis.seeds_shared(c3b, c3c)
    assert not analysis.seeds_shared(c3c, c3c.replace(neurons_per_layer=(32, 10)))


def test_seeds_shared_means_the_same_initial_weights_and_batches():
    """What the pairing rests on: two configurations that share seeds start from the same weights
    and see the same batches (checked on the runs themselves)."""
    from helpers import TrainConfig, batch_indices, SoftmaxModel
    config = TrainConfig(neurons_per_layer=(16, 10), use_improved_weight_init=True, train_size=128,
                         batch_size=16, seed=3)
    other = config.replace(use_improved_sigmoid=True, use_momentum=True)
    assert analysis.seeds_shared(config, other)
    draws = []
    for c in (config, other):
        rng = np.random.default_rng(c.seed)
        model = SoftmaxModel(c.neurons_per_layer, c.use_improved_sigmoid, c.use_improved_weight_init, rng=rng)
        draws.append((model.ws, list(batch_indices(c.train_size, c.batch_size, True, rng))))
    for w, v in zip(draws[0][0], draws[1][0]):
        np.testing.assert_array_equal(w, v)
    for i, j in zip(draws[0][1], draws[1][1]):
        np.testing.assert_array_equal(i, j)


def test_primary_comparisons_are_one_bonferroni_family_whose_intervals_give_the_verdicts():
    from scipy import stats
    from helpers import TrainConfig
    base = TrainConfig(use_improved_weight_init=True)
    configs = {"a": base, "b": base.replace(use_improved_sigmoid=True),
               "c": base.replace(neurons_per_layer=(32, 10)), "d": base.replace(neurons_per_layer=(16, 10))}
    metrics = {"a": {"best_val_accuracy": np.array([0.950, 0.951, 0.949, 0.950, 0.952])},
               "b": {"best_val_accuracy": np.array([0.960, 0.962, 0.958, 0.961, 0.962])},
               "c": {"best_val_accuracy": np.array([0.951, 0.948, 0.952, 0.950, 0.949])},
               # Welch p = 0.027: below 0.05 alone, not below 0.05 / 3
               "d": {"best_val_accuracy": np.array([0.947, 0.949, 0.948, 0.946, 0.950])}}
    pairs = {"x": ("a", "b"), "y": ("a", "c"), "z": ("a", "d")}
    primary = analysis.primary_comparisons(metrics, configs, pairs)
    assert primary["x"]["paired"] and not primary["y"]["paired"]
    welch = stats.ttest_ind(metrics["d"]["best_val_accuracy"], metrics["a"]["best_val_accuracy"],
                            equal_var=False)
    assert 0.05 / 3 < welch.pvalue < 0.05
    low, high = welch.confidence_interval(1 - 0.05 / 3)
    assert primary["z"]["ci_low"] == pytest.approx(low) and primary["z"]["ci_high"] == pytest.approx(high)
    assert primary["z"]["adjusted_p_value"] == pytest.approx(3 * welch.pvalue)
    assert [primary[t]["verdict"] for t in "xyz"] == ["higher", "no difference shown", "no difference shown"]
    for p in primary.values():   # by construction: a verdict exactly when the interval excludes 0
        assert p["confidence"] == pytest.approx(1 - 0.05 / 3)
        assert (p["adjusted_p_value"] < 0.05) == (p["ci_low"] > 0 or p["ci_high"] < 0)


def test_secondary_differences_carry_no_test():
    from helpers import TrainConfig
    configs = {"a": TrainConfig(), "b": TrainConfig(neurons_per_layer=(32, 10))}
    metrics = {"a": {"m": np.array([1.0, 2.0, 3.0])}, "b": {"m": np.array([2.0, 3.0, 5.0])}}
    d = analysis.secondary_differences(metrics, configs, "a", "b", ["m"])["m"]
    assert "p_value" not in d and d["diff"] == pytest.approx(4 / 3)


def test_format_p():
    assert analysis.format_p(0.0004) == "p < 0.001"
    assert analysis.format_p(0.00794) == "p = 0.0079"
    assert analysis.format_p(0.0456) == "p = 0.046"
    assert analysis.format_p(0.41) == "p = 0.41"


def test_interval_prints_true_minus_signs():
    assert (analysis.signed(-0.46, 2), analysis.signed(0.06, 2)) == ("\u22120.46", "+0.06")
    assert analysis.signed(-0.0004, 2) == "\u22120.0004" and analysis.signed(0.004, 2) == "+0.004"
    assert analysis.signed(0.0, 2) == "+0.00"
    assert analysis.percent(0.96228) == f"96.23{NBSP}%"
    assert analysis.percent_range(np.array([0.9613, 0.9657])) == f"96.13{NBSP}% to 96.57{NBSP}%"
    assert analysis.percent_range(np.array([1.0, 1.0])) == f"100.00{NBSP}%"


def test_step_multiply_adds_counts_forward_gradients_and_back_propagated_errors():
    from helpers import TrainConfig
    one = TrainConfig(neurons_per_layer=(64, 10))
    assert analysis.step_multiply_adds(one) == 32 * (2 * (785 * 64 + 64 * 10) + 64 * 10)
    two = TrainConfig(neurons_per_layer=(60, 60, 10))
    w = [785 * 60, 60 * 60, 60 * 10]
    assert analysis.step_multiply_adds(two) == 32 * (2 * sum(w) + w[1] + w[2])


def test_primary_comparisons_check_each_verdict_on_the_held_out_images():
    """The held-out difference: the same test at the same Bonferroni level, its side worded as a
    verdict, on the held-out accuracies."""
    from scipy import stats
    from helpers import TrainConfig
    configs = {"a": TrainConfig(), "b": TrainConfig(neurons_per_layer=(32, 10))}
    metrics = {"a": {"best_val_accuracy": np.array([0.950, 0.951, 0.949, 0.950, 0.952]),
                     "held_out_accuracy": np.array([0.948, 0.950, 0.947, 0.949, 0.950])},
               "b": {"best_val_accuracy": np.array([0.960, 0.962, 0.958, 0.961, 0.962]),
                     "held_out_accuracy": np.array([0.949, 0.952, 0.946, 0.951, 0.948])}}
    p = analysis.primary_comparisons(metrics, configs, {"x": ("a", "b"), "y": ("b", "a")})["x"]
    welch = stats.ttest_ind(metrics["b"]["held_out_accuracy"], metrics["a"]["held_out_accuracy"],
                            equal_var=False)
    low, high = welch.confidence_interval(1 - 0.05 / 2)
    h = p["held_out"]
    assert (h["ci_low"], h["ci_high"]) == (pytest.approx(low), pytest.approx(high))
    assert h["confidence"] == p["confidence"] == pytest.approx(1 - 0.05 / 2)
    assert p["verdict"] == "higher" and h["side"] == "no difference shown"


def test_interaction_compares_the_per_seed_effects_of_one_change_on_two_networks():
    from scipy import stats
    from helpers import TrainConfig
    one, ten = TrainConfig(), TrainConfig(neurons_per_layer=(64,) * 10 + (10,))
    configs = {"a": one, "a'": one.replace(learning_rate=0.005),
               "b": ten, "b'": ten.replace(learning_rate=0.005)}
    m = {"a": [0.96, 0.961, 0.962, 0.959, 0.96], "a'": [0.958, 0.96, 0.961, 0.957, 0.959],
         "b": [0.95, 0.949, 0.952, 0.951, 0.95], "b'": [0.959, 0.958, 0.96, 0.957, 0.961]}
    metrics = {k: {"acc": np.array(v)} for k, v in m.items()}
    d = analysis.interaction(metrics, configs, [("a", "a'"), ("b", "b'")], "acc")
    small, large = (np.array(m["a'"]) - m["a"]), (np.array(m["b'"]) - m["b"])
    assert d["diff"] == pytest.approx(large.mean() - small.mean())
    low, high = stats.ttest_ind(large, small, equal_var=False).confidence_interval(0.95)
    assert (d["ci_low"], d["ci_high"]) == (pytest.approx(low), pytest.approx(high))
    assert "p_value" not in d and analysis.reading(d) == "clearly higher"
    with pytest.raises(ValueError, match="seed by seed"):
        analysis.interaction(metrics, configs, [("a", "b"), ("b", "b'")], "acc")


def test_reading_words_an_estimate_by_its_interval():
    assert analysis.reading(dict(diff=1.0, ci_low=0.2, ci_high=1.8)) == "clearly higher"
    assert analysis.reading(dict(diff=-1.0, ci_low=-1.8, ci_high=-0.2)) == "clearly lower"
    assert analysis.reading(dict(diff=1.0, ci_low=-0.2, ci_high=1.8)) == "not clear"


def primary_and_estimates():
    primary = dict(before="3c", after="4b", measure="best_val_accuracy", paired=False, diff=0.0074,
                   ci_low=0.0003, ci_high=0.0146, confidence=1 - 0.05 / 7, mean_before=0.9623,
                   mean_after=0.9697, verdict="higher", adjusted_p_value=0.041,
                   held_out=dict(diff=0.0061, ci_low=-0.0004, ci_high=0.0126, confidence=1 - 0.05 / 7,
                                 mean_before=0.9601, mean_after=0.9662, side="no difference shown"))
    estimates = {"best_val_loss": dict(diff=-0.0205, ci_low=-0.03, ci_high=-0.0109, confidence=0.95,
                                       mean_before=0.1373, mean_after=0.1168)}
    return primary, estimates


def test_task_table_gives_the_primary_row_its_level_and_verdict_and_the_rest_their_reading():
    primary, estimates = primary_and_estimates()
    lines = analysis.task_table(primary, estimates, ["best_val_loss"]).split("\n")
    assert lines[0] == "| kept weights (mean over seeds) | 3c | 4b | 4b − 3c | 95 % CI | reading |"
    first, held, loss = (line.replace(NBSP, " ") for line in lines[2:])
    assert first == ("| val. accuracy (99.3 % CI) | 96.23 % | 96.97 % | +0.74 | +0.03 to +1.46 | "
                     "higher (p = 0.041) |")
    assert held == ("| held-out accuracy (99.3 % CI) | 96.01 % | 96.62 % | +0.61 | "
                    "\u22120.04 to +1.26 | not clear |")
    assert loss == ("| val. loss | 0.137 | 0.117 | \u22120.021 | \u22120.030 to \u22120.011 | "
                    "clearly lower |")


def test_primary_table_puts_the_held_out_difference_beside_the_verdict():
    primary, _ = primary_and_estimates()
    lines = analysis.primary_table({"4b": primary}, {"4b": "are 128 hidden units too many?"}).split("\n")
    assert "(99.3 % CI)" in lines[0].replace(NBSP, " ")
    assert lines[2] == ("| 4b | are 128 hidden units too many? | 4b − 3c | +0.74 (+0.03 to +1.46) | "
                        "higher (p = 0.041) | +0.61 (\u22120.04 to +1.26) |")


def test_gradient_check_report_is_kept_in_the_cache(tmp_path, monkeypatch):
    """A second call with the same inputs reads the check; other inputs check again."""
    import helpers
    calls = []
    real = helpers.gradient_check_errors

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(analysis, "gradient_check_errors", counting)
    rng = np.random.default_rng(0)
    X, Y = rng.integers(0, 256, size=(5, 784)), rng.integers(0, 10, size=5)
    first = analysis.gradient_check_report(X, Y, 33.0, 78.0, [4, 10], False, 20, cache_dir=tmp_path)
    assert len(calls) == 2 and len(list(tmp_path.glob("gradient-check-*.json"))) == 1
    again = analysis.gradient_check_report(X, Y, 33.0, 78.0, [4, 10], False, 20, cache_dir=tmp_path)
    assert len(calls) == 2 and again == first
    analysis.gradient_check_report(X, Y, 33.0, 78.0, [4, 10], True, 20, cache_dir=tmp_path)
    assert len(calls) == 4 and len(list(tmp_path.glob("gradient-check-*.json"))) == 2
