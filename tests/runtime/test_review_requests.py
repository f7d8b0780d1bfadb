"""Opening the template update's review request (mlopsify_runtime.template_update_branch).

Each provider's API is a local HTTP server on 127.0.0.1 standing in for it (no GitLab,
GitHub or Azure DevOps can run here): it records the request and answers as the real API
does (201 and the request's JSON). The call is made in-process, with the runtime's function.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from provider_api import provider_api

from mlopsify_runtime import template_update_branch as job
from mlopsify_runtime.template_update_branch import JobError, Outcome

TOKEN = "azure-access-token-0123456789"  # pragma: allowlist secret


@pytest.fixture
def api() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    with provider_api() as served:
        yield served


@pytest.fixture
def outcome(monkeypatch: pytest.MonkeyPatch) -> Outcome:
    # The stand-in is on 127.0.0.1: no proxy of this machine may sit in between.
    for name in ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY"):
        monkeypatch.delenv(name, raising=False)
    for name in (
        "TEMPLATE_UPDATE_API_URL",
        "TEMPLATE_UPDATE_REPOSITORY",
        "SYSTEM_COLLECTIONURI",
        "SYSTEM_TEAMPROJECT",
        "BUILD_REPOSITORY_NAME",
        "CI_API_V4_URL",
        "CI_PROJECT_ID",
    ):
        monkeypatch.delenv(name, raising=False)
    return Outcome("v0.4.0", "v0.5.0", "template-update/v0.5.0")


def test_azure_devops_pull_request_from_the_pipelines_variables(
    api: tuple[str, list[dict[str, Any]]], outcome: Outcome, monkeypatch: pytest.MonkeyPatch
) -> None:
    base, received = api
    # What an Azure Pipelines job has: the collection, the project and the repository.
    monkeypatch.setenv("TEMPLATE_UPDATE_PROVIDER", "azure")
    monkeypatch.setenv("SYSTEM_COLLECTIONURI", f"{base}/acme/")
    monkeypatch.setenv("SYSTEM_TEAMPROJECT", "ML Team")
    monkeypatch.setenv("BUILD_REPOSITORY_NAME", "shop-model")
    summary = "# Template update v0.4.0 -> v0.5.0\n" + "x" * 5000

    job.open_request(outcome, summary, TOKEN, "main")

    [request] = received
    assert request["path"] == (
        "/acme/ML%20Team/_apis/git/repositories/shop-model/pullrequests?api-version=7.1"
    )
    assert request["headers"]["authorization"] == f"Bearer {TOKEN}"
    body = request["body"]
    assert body["sourceRefName"] == "refs/heads/template-update/v0.5.0"
    assert body["targetRefName"] == "refs/heads/main"
    assert body["title"] == "Template update v0.4.0 -> v0.5.0"
    # Azure DevOps refuses a description over 4000 characters: the summary is cut to fit.
    assert len(body["description"]) == job.AZURE_DESCRIPTION_LIMIT
    assert body["description"].startswith("# Template update v0.4.0 -> v0.5.0\nxxx")
    assert outcome.request_url == ("https://dev.azure.com/acme/ml/_git/shop-model/pullrequest/42")


def test_azure_devops_api_url_and_repository_given_explicitly(
    api: tuple[str, list[dict[str, Any]]], outcome: Outcome, monkeypatch: pytest.MonkeyPatch
) -> None:
    base, received = api
    monkeypatch.setenv("TEMPLATE_UPDATE_PROVIDER", "azure")
    monkeypatch.setenv("TEMPLATE_UPDATE_API_URL", f"{base}/org/proj/")
    monkeypatch.setenv("TEMPLATE_UPDATE_REPOSITORY", "0b4a-repo id")

    job.open_request(outcome, "short summary\n", TOKEN, "develop")

    [request] = received
    assert request["path"] == (
        "/org/proj/_apis/git/repositories/0b4a-repo%20id/pullrequests?api-version=7.1"
    )
    assert request["body"]["description"] == "short summary\n"
    assert request["body"]["targetRefName"] == "refs/heads/develop"


def test_azure_devops_without_a_project_says_what_to_set(
    outcome: Outcome, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEMPLATE_UPDATE_PROVIDER", "azure")
    with pytest.raises(JobError, match="TEMPLATE_UPDATE_API_URL is not set: give the Azure DevOps"):
        job.open_request(outcome, "summary\n", TOKEN, "main")


def test_gitlab_merge_request_keeps_its_call(
    api: tuple[str, list[dict[str, Any]]], outcome: Outcome, monkeypatch: pytest.MonkeyPatch
) -> None:
    base, received = api
    monkeypatch.setenv("TEMPLATE_UPDATE_PROVIDER", "gitlab")
    monkeypatch.setenv("CI_API_V4_URL", f"{base}/api/v4")
    monkeypatch.setenv("CI_PROJECT_ID", "ml/shop-model")

    job.open_request(outcome, "summary\n", TOKEN, "main")

    [request] = received
    assert request["path"] == "/api/v4/projects/ml%2Fshop-model/merge_requests"
    assert request["headers"]["private-token"] == TOKEN
    assert request["body"]["source_branch"] == "template-update/v0.5.0"
    assert outcome.request_url == "http://127.0.0.1/ml/shop-model/-/merge_requests/1"


def test_an_unknown_provider_is_refused_with_the_choices(
    outcome: Outcome, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEMPLATE_UPDATE_PROVIDER", "bitbucket")
    with pytest.raises(
        JobError, match="TEMPLATE_UPDATE_PROVIDER must be gitlab, github or azure to open a request"
    ):
        job.open_request(outcome, "summary\n", TOKEN, "main")
