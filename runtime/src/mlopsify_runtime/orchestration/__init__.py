"""Run the DVC pipeline's stages as tasks of Kubeflow Pipelines or Airflow (docs/runtime/orchestration.md)."""
