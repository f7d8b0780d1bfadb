"""This project's extension points: how the team changes the runtime's behaviour.

The runtime (mlopsify-runtime) calls the functions defined here; a name left undefined keeps
its behaviour. pyproject.toml declares this module (`[project.entry-points."mlopsify.hooks"]`).
The hooks, with an example of each (docs/architecture.md has the full contract):

    def gate_metrics(y_true, y_pred, scores, task_type) -> dict[str, float]:
        # more metrics for the quality gate, judged by params.yaml gate.min / gate.max
        return {"positive_rate": float((y_pred == 1).mean())}

    def drift_statistic(reference, live) -> float:
        # the drift score of a number feature (0: none), instead of the runtime's
        ...

    def preprocess(record: dict) -> dict:
        # each validated record before the model sees it
        return record

    def postprocess(record: dict, answer: dict) -> dict:
        # each answer before the service returns it
        return answer

    def promotion_rule(decision: dict) -> str | None:
        # a string refuses the promotion and is the reason shown
        return None
"""
