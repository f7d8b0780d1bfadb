"""This project's extension points: how the team changes the runtime's behaviour.

The runtime (mlopsify-runtime) calls the functions defined here; a name left undefined keeps
its behaviour. pyproject.toml declares this module (`[project.entry-points."mlopsify.hooks"]`).
Each hook's full contract is the docstring of `mlopsify_runtime.hooks`. An example of each:

    def gate_metrics(y_true, y_pred, scores, task_type) -> dict[str, float]:
        # more metrics for the quality gate, judged by params.yaml gate.min / gate.max / tolerance;
        # scores: a classifier's probabilities (a column per class), None for a regressor
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
        # asked by `make promote` before it deploys and before it moves the alias, with
        # model_name, version, environment, image_tag, reason, by and the gate's decision;
        # a string refuses the promotion and is the reason shown
        return None
"""
