"""Three small repositories shaped like public ones that no one here wrote, built in tmp dirs.

- ``service``: an HTTP service with its own GitHub workflows, its own .gitignore and
  requirements.txt, an image that runs as root, and a Dockerfile of its MLflow server (which
  runs as a user of its own) under deploy/tracking/.
- ``ml_service``: an ML service with its own DVC pipeline and params.yaml, and tests/ as a
  package (tests/__init__.py).
- ``notebooks``: notebooks, a README and a requirements.txt, nothing else.

Each is committed on branch main; ``failing_tests=True`` gives a test that fails.
"""

from __future__ import annotations

import json
from pathlib import Path

from template_repos import git

APP = "def predict(row: dict[str, float]) -> float:\n    return sum(row.values())\n"
PASSING = "from app import predict\n\n\ndef test_predict() -> None:\n    assert predict({'a': 1.0}) == 1.0\n"
FAILING = "from app import predict\n\n\ndef test_predict() -> None:\n    assert predict({'a': 1.0}) == 2.0\n"

SERVICE_GITIGNORE = "__pycache__/\n*.log\n"
SERVICE_CI = (
    "name: ci\n"
    "on:\n  push:\n    branches: [main]\n"
    "jobs:\n  test:\n    runs-on: ubuntu-latest\n    steps:\n"
    "      - uses: actions/checkout@v4\n      - run: pip install -r requirements.txt\n"
    "      - run: pytest\n"
    "  image:\n    runs-on: ubuntu-latest\n    steps:\n"
    "      - uses: actions/checkout@v4\n      - run: docker build -t shop .\n"
)
SERVICE_DEPLOY = (
    "name: deploy\n"
    "on:\n  push:\n    branches: [main]\n"
    "jobs:\n  deploy:\n    runs-on: ubuntu-latest\n    steps:\n      - run: ./deploy.sh\n"
)
# The service's image: no USER, so it runs as root.
SERVICE_DOCKERFILE = 'FROM python:3.11-slim\nCOPY . /app\nCMD ["python", "/app/app.py"]\n'
# The MLflow server's image runs as a user of its own: it says nothing of the service's.
TRACKING_DOCKERFILE = (
    "FROM python:3.11-slim\nRUN pip install mlflow==3.17.2\nUSER 10001\n"
    'CMD ["mlflow", "server", "--host", "0.0.0.0"]\n'
)

ML_PARAMS = "# our training settings\ntrain:\n  epochs: 10  # enough for the toy data\ndata:\n  test_size: 0.3\n"
ML_DVC = (
    "stages:\n"
    "  prepare:\n    cmd: python prepare.py\n    deps:\n      - prepare.py\n"
    "    outs:\n      - data/prepared.csv\n"
    "  fit:\n    cmd: python fit.py\n    deps:\n      - fit.py\n      - data/prepared.csv\n"
    "    params:\n      - train\n    outs:\n      - models/model.pkl\n"
)
DVC_CONFIG = "[core]\n    remote = store\n['remote \"store\"']\n    url = /srv/dvc\n"


def _notebook(source: str) -> str:
    cell = {
        "cell_type": "code",
        "metadata": {},
        "source": [source],
        "outputs": [],
        "execution_count": None,
    }
    return json.dumps({"cells": [cell], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}) + "\n"


def commit(root: Path, files: dict[str, str], message: str = "their code") -> Path:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    if not (root / ".git").exists():
        git("init", "--quiet", "--initial-branch=main", cwd=root)
    git("add", "--all", cwd=root)
    git("commit", "--quiet", "--no-verify", "-m", message, cwd=root)
    return root


def service(root: Path, *, failing_tests: bool = False) -> Path:
    return commit(
        root,
        {
            "README.md": "# Shop service\n",
            "app.py": APP,
            "tests/test_app.py": FAILING if failing_tests else PASSING,
            "requirements.txt": "fastapi\n",
            ".gitignore": SERVICE_GITIGNORE,
            ".github/workflows/ci.yml": SERVICE_CI,
            ".github/workflows/deploy.yml": SERVICE_DEPLOY,
            "Dockerfile": SERVICE_DOCKERFILE,
            "deploy/tracking/Dockerfile": TRACKING_DOCKERFILE,
        },
    )


def ml_service(
    root: Path, *, params: str = ML_PARAMS, pipeline: str = ML_DVC, failing_tests: bool = False
) -> Path:
    return commit(
        root,
        {
            "README.md": "# Churn model\n",
            "app.py": APP,
            "prepare.py": "print('prepare')\n",
            "fit.py": "print('fit')\n",
            "params.yaml": params,
            "dvc.yaml": pipeline,
            ".dvc/config": DVC_CONFIG,
            ".dvc/.gitignore": "/config.local\n/tmp\n/cache\n",
            "tests/__init__.py": "",
            "tests/test_app.py": FAILING if failing_tests else PASSING,
            "setup.py": "from setuptools import setup\n\nsetup(name='churn')\n",
        },
    )


def notebooks(root: Path) -> Path:
    return commit(
        root,
        {
            "README.md": "# Exploring churn\n",
            "notebooks/explore.ipynb": _notebook("import pandas as pd\n"),
            "notebooks/train.ipynb": _notebook(
                "from sklearn.linear_model import LogisticRegression\n"
            ),
            "requirements.txt": "pandas\nscikit-learn\n",
        },
    )
