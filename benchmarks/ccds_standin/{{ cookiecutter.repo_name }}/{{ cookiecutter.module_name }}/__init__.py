"""{{ cookiecutter.module_name }}: __init__ step of {{ cookiecutter.project_name }}."""

from pathlib import Path

PROJ_ROOT = Path(__file__).resolve().parents[1]
DATA_DIR = PROJ_ROOT / "data"
{% if cookiecutter.include_code_scaffold == "Yes" %}
def main(input_path: Path = DATA_DIR / "raw" / "dataset.csv") -> Path:
    return input_path
{% endif %}
