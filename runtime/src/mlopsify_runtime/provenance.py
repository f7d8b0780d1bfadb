"""Who and when, as the registry records them for the gate, promotions and rollbacks."""

from __future__ import annotations

import getpass
import os
import time

# The CI system's user when there is one, else the local account; a step's own variable first.
CI_ACTORS = ("GITLAB_USER_LOGIN", "GITHUB_ACTOR", "BUILD_USER_ID")


def actor(*own: str) -> str:
    """The first of the variables ``own`` then the CI systems' user variables that is set, else the login."""
    return next((os.environ[name] for name in (*own, *CI_ACTORS) if os.environ.get(name)), login())


def login() -> str:
    """The account's name; ``uid N`` in a container whose user has no passwd entry (the images' 10001)."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return f"uid {os.getuid()}"


def utc_now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def ci_run() -> str:
    """The CI run that does the work, as a link (GitLab, Jenkins, GitHub Actions), else ''."""
    env = os.environ
    if env.get("GITHUB_RUN_ID"):
        return (
            f"{env.get('GITHUB_SERVER_URL', '')}/{env.get('GITHUB_REPOSITORY', '')}/actions/runs/{env['GITHUB_RUN_ID']}"
        )
    return env.get("CI_PIPELINE_URL") or env.get("BUILD_URL") or ""
