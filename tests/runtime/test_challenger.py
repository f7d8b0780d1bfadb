"""The gate's comparison of a challenger with the champion, and the decision it records."""

from mlopsify_runtime.challenger import Decision, comparison_failures


def test_a_challenger_within_tolerance_passes() -> None:
    champion = {"accuracy": 0.95, "rmse": 50.0}
    assert (
        comparison_failures(
            {"accuracy": 0.945, "rmse": 50.4}, champion, {"accuracy": 0.01, "rmse": 0.5}
        )
        == []
    )


def test_a_worse_challenger_names_the_metric_and_the_tolerance() -> None:
    failures = comparison_failures(
        {"accuracy": 0.90, "rmse": 52.0},
        {"accuracy": 0.95, "rmse": 50.0},
        {"accuracy": 0.01, "rmse": 0.5},
    )
    assert failures == [
        "accuracy = 0.9000 is worse than the champion's 0.9500 by 0.0500, more than the tolerance 0.01 "
        "(params.yaml gate.tolerance.accuracy)",
        "rmse = 52.0000 is worse than the champion's 50.0000 by 2.0000, more than the tolerance 0.5 "
        "(params.yaml gate.tolerance.rmse)",
    ]


def test_a_tolerance_on_an_unknown_metric_is_refused() -> None:
    assert comparison_failures({"f1": 0.9}, {"f1": 0.9}, {"recall": 0.1}) == [
        "params.yaml gate.tolerance.recall: no metric 'recall' (use one of f1)"
    ]


def test_the_decision_is_tagged_with_both_versions_and_metrics() -> None:
    decision = Decision(
        model_name="m",
        alias="champion",
        challenger_version="2",
        challenger_metrics={"f1": 0.9},
        champion_version="1",
        champion_metrics={"f1": 0.95},
        tolerance={"f1": 0.01},
        failures=["f1 is worse"],
        by="alice",
        at="2026-01-01T00:00:00Z",
    )
    tags = decision.tags()
    assert (tags["quality_gate"], tags["gate.result"], tags["gate.champion_version"]) == (
        "failed",
        "rejected",
        "1",
    )
    assert (tags["gate.challenger_metrics"], tags["gate.champion_metrics"]) == (
        '{"f1": 0.9}',
        '{"f1": 0.95}',
    )
    assert "| f1 | 0.9000 | - | 0.9500 | 0.01 |" in decision.markdown().splitlines()
