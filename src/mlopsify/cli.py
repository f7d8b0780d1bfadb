"""The ``mlopsify`` command: parse arguments, call one library function, print.

Errors a user can cause (:class:`~mlopsify.errors.MlopsifyError`) become one line on
stderr and the error's documented exit code, in one place (:class:`_Commands`); anything
else is a bug and keeps its traceback. The command line's answers (``--data KEY=VALUE``,
``--answers-file``) become the mapping the library takes here, and only here.
"""

from __future__ import annotations

import json
import signal
import sys
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer
from typer.core import TyperGroup

from ._version import __version__
from .errors import (
    InvalidAnswerError,
    MlopsifyError,
    UpdateConflictError,
    UpdateInterruptedError,
)

if TYPE_CHECKING:
    from .changes import UpdateResult
    from .template_source import TemplateSource


def fail(error: MlopsifyError) -> NoReturn:
    """One red line on stderr and the error's exit code; an update's changes first, if any."""
    if isinstance(error, UpdateConflictError) and error.result is not None:
        _ignore_interrupts()
        result = error.result
        _note_recovery(result.recovered)
        verb = "Would update" if result.pretend else "Updated"
        typer.echo(
            f"{verb} {result.project} from {result.from_version} to {result.to_version} with conflicts:"
        )
        _print_changes(result)
    typer.secho(f"error: {error}", err=True, fg=typer.colors.RED)
    raise typer.Exit(code=error.exit_code)


class _Commands(TyperGroup):
    """The command group: the one place that turns an ``MlopsifyError`` into an exit code."""

    # Any: Typer vendors Click since 0.20, so the context's class depends on its version.
    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except MlopsifyError as error:
            fail(error)
        except KeyboardInterrupt:
            # Typer would exit 130 without a word; `update` and `add` say more (UpdateInterruptedError).
            typer.secho("error: interrupted", err=True, fg=typer.colors.RED)
            raise typer.Exit(code=UpdateInterruptedError.exit_code) from None


app = typer.Typer(
    cls=_Commands,
    name="mlopsify",
    help="Take a DevOps repository to MLOps: create, update, extend and assess ML projects.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # Plain Click help: Rich's formatter costs ~110 ms a call, more than importing Typer
    # (docs/benchmarks.md); `--help` stays within 1.5x of `import typer`.
    rich_markup_mode=None,
    # Up to 100 columns when the terminal has them, so command summaries are not cut short.
    context_settings={"max_content_width": 100},
)


def _show_version(value: bool) -> None:
    if value:
        typer.echo(f"mlopsify {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_show_version, is_eager=True, help="Show the version and exit."
        ),
    ] = False,
) -> None:
    """Take a DevOps repository to MLOps: create, update, extend and assess ML projects."""


DefaultsOption = Annotated[
    bool,
    typer.Option("--defaults", help="Take the default for every question not given by --data."),
]
AnswerOption = Annotated[
    list[str] | None,
    typer.Option("--data", "-d", metavar="KEY=VALUE", help="Answer one question; repeatable."),
]
AnswersFileOption = Annotated[
    Path | None,
    typer.Option("--answers-file", help="YAML file of answers (question: answer); --data wins."),
]


ReleaseOption = Annotated[
    str | None,
    typer.Option(
        "--release",
        metavar="VERSION",
        help="Template release, in any spelling of its version (v0.4.0, 0.4.0rc1); default: the"
        " newest final release (a pre-release only when named, or when there is nothing else).",
    ),
]
TemplateOption = Annotated[
    str | None,
    typer.Option(
        "--template",
        metavar="PATH_OR_URL",
        help="The Copier template's git repository (a path or a git URL) instead of the release"
        " history shipped with mlopsify; the answers file records it.",
    ),
]


def template_source(location: str | None) -> TemplateSource | None:
    """The ``--template`` option as a source; None for the default."""
    if location is None:
        return None
    from .template_source import TemplateSource

    return TemplateSource.given(location)


def parse_data(pairs: list[str]) -> dict[str, str]:
    """Turn repeated ``KEY=VALUE`` options into a dict; Copier casts each to its question's type."""
    data: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise InvalidAnswerError(
                f"--data '{pair}' is not KEY=VALUE: write it as, for example, --data task_type=regression"
            )
        data[key.strip()] = value
    return data


def gather_answers(data: list[str] | None, answers_file: Path | None) -> dict[str, Any]:
    """Answers from ``--answers-file``, then from ``--data``, which wins."""
    from .answers import read_answers_file

    answers = read_answers_file(answers_file) if answers_file else {}
    return {**answers, **parse_data(data or [])}


def _answer_without_asking(
    defaults: bool, data: list[str] | None, answers_file: Path | None
) -> bool:
    """Whether Copier takes defaults instead of asking; fails when it would have to ask but cannot.

    Answers on the command line make the run non-interactive: the rest take their defaults.
    """
    defaults = defaults or bool(data) or answers_file is not None
    if not defaults and not sys.stdin.isatty():
        # Without a terminal Copier cannot ask: say so before anything is rendered.
        raise MlopsifyError(
            "no terminal to ask the questions on: add --defaults (with --data or --answers-file)"
        )
    return defaults


@app.command()
def new(
    destination: Annotated[
        Path, typer.Argument(help="Directory of the new project; must not exist or be empty.")
    ],
    defaults: DefaultsOption = False,
    data: AnswerOption = None,
    answers_file: AnswersFileOption = None,
    release: ReleaseOption = None,
    template: TemplateOption = None,
) -> None:
    """Create a new MLOps project and make it a git repository with a first commit."""
    from .creation import create_project

    defaults = _answer_without_asking(defaults, data, answers_file)
    answers = gather_answers(data, answers_file)
    created = create_project(
        destination,
        data=answers,
        defaults=defaults,
        template=template_source(template),
        vcs_ref=release,
    )
    project = created.path
    typer.echo(f"Created {project}")
    if created.rendered.names:
        typer.echo(f"names: {created.rendered.names}")
    typer.echo("Next steps:")
    typer.echo(f"  cd {project}")
    typer.echo("  make setup      # create the environment")
    typer.echo("  make pipeline   # run the DVC pipeline: data, validation, training, quality gate")
    typer.echo("  make test       # run the project's tests")


class ConflictMode(str, Enum):
    inline = "inline"
    rej = "rej"


ProjectPath = Annotated[Path, typer.Argument(help="The project's directory.")]
DataOption = Annotated[
    list[str] | None,
    typer.Option(
        "--data", "-d", metavar="KEY=VALUE", help="Change one answer on the way; repeatable."
    ),
]
ConflictOption = Annotated[
    ConflictMode,
    typer.Option(
        help="Leave conflicts as markers in the file (inline) or as FILE.rej beside it (rej)."
    ),
]
PretendOption = Annotated[
    bool, typer.Option("--pretend", help="Show what would change; write nothing.")
]
TrustOption = Annotated[
    bool,
    typer.Option(
        "--trust", help="Let a template other than mlopsify's own run its migrations and tasks."
    ),
]


def _ignore_interrupts() -> None:
    """The update is written (or was not needed): a Ctrl-C now would change nothing, so the
    report is printed whole and the exit code stays the command's. Only the console script
    changes the process's signal handling; in-process callers (CliRunner) keep theirs."""
    if _ConsoleScript.running:
        signal.signal(signal.SIGINT, signal.SIG_IGN)


def _note_recovery(recovered: str | None) -> None:
    """Say, on stderr, that an interrupted earlier update was rolled back before this one."""
    if recovered:
        typer.echo(f"note: {recovered}", err=True)


def _print_changes(result: UpdateResult) -> None:
    for change in result.changes:
        typer.echo(f"  {change.status:<9} {change.path}")
        if change.path in result.notes:
            typer.echo(f"            {result.notes[change.path]}")


def _report_update(result: UpdateResult) -> None:
    _note_recovery(result.recovered)
    if not result.changes and result.from_version == result.to_version:
        typer.echo(f"{result.project} is at template {result.to_version}: nothing to update")
        return
    count = len(result.changes)
    files = f"{count} file{'s' if count != 1 else ''}"
    if result.pretend:
        typer.echo(
            f"Would update {result.project} from {result.from_version} to {result.to_version}: "
            f"{files} would change (nothing was written)"
        )
    else:
        typer.echo(
            f"Updated {result.project} from {result.from_version} to {result.to_version}: {files} changed"
        )
    _print_changes(result)
    if not result.pretend and result.changes:
        typer.echo("Review with `git diff`, then commit.")


@app.command()
def update(
    path: ProjectPath = Path(),
    release: Annotated[
        str | None,
        typer.Option(
            "--release",
            "--to",
            metavar="VERSION",
            help="Template release, in any spelling of its version (v0.4.0, 0.4.0rc1); default:"
            " the newest final release (pre-releases too when the project is at one).",
        ),
    ] = None,
    template: Annotated[
        str | None,
        typer.Option(
            "--template",
            metavar="PATH_OR_URL",
            help="The Copier template's git repository (a path or a git URL) instead of the one"
            " the answers file records; the answers file then records it.",
        ),
    ] = None,
    pretend: PretendOption = False,
    conflict: ConflictOption = ConflictMode.inline,
    data: DataOption = None,
    trust: TrustOption = False,
) -> None:
    """Update a project to a newer template release by a three-way merge, offline."""
    from .updating import update_project

    result = update_project(
        path,
        to=release,
        pretend=pretend,
        conflict=conflict.value,
        data=parse_data(data or []),
        trust=trust,
        template=template_source(template),
    )
    _ignore_interrupts()
    _report_update(result)


@app.command()
def add(
    service: Annotated[
        str | None, typer.Argument(help="The service to add; omit it to list them.")
    ] = None,
    path: ProjectPath = Path(),
    pretend: PretendOption = False,
    conflict: ConflictOption = ConflictMode.inline,
    data: DataOption = None,
    trust: TrustOption = False,
) -> None:
    """Add a service (CI provider, Kubernetes, monitoring, DVC remote, compliance) to a project."""
    from .services import add_service, list_services

    if service is None:
        listing = list_services(path)
        typer.echo(f"Services of template {listing.version} (mlopsify add SERVICE):")
        for item in listing.services:
            mark = "  (on)" if listing.is_on(item) else ""
            typer.echo(f"  {item.name:<11} {item.question}={json.dumps(item.value)}{mark}")
        return
    added = add_service(
        path,
        service,
        pretend=pretend,
        conflict=conflict.value,
        data=parse_data(data or []),
        trust=trust,
    )
    _ignore_interrupts()
    _note_recovery(added.recovered)
    name, question = added.service.name, added.service.question
    if added.update is None:
        typer.echo(
            f"{name} is already on ({question}: {json.dumps(added.service.value)}): nothing to do"
        )
        return
    verb = "Would add" if added.update.pretend else "Added"
    typer.echo(
        f"{verb} {name}: {question} {json.dumps(added.previous)} -> {json.dumps(added.service.value)}"
    )
    _print_changes(added.update)
    if not added.update.pretend:
        typer.echo("Review with `git diff`, then commit.")


@app.command()
def adopt(
    path: ProjectPath = Path(),
    defaults: DefaultsOption = False,
    data: AnswerOption = None,
    answers_file: AnswersFileOption = None,
    release: ReleaseOption = None,
    template: TemplateOption = None,
) -> None:
    """Bring an existing repository under the template; never overwrite its files."""
    from .adoption import adopt_repository

    defaults = _answer_without_asking(defaults, data, answers_file)
    result = adopt_repository(
        path,
        data=gather_answers(data, answers_file),
        defaults=defaults,
        template=template_source(template),
        vcs_ref=release,
    )
    typer.echo(
        f"Adopted {result.project} into template {result.version}: "
        f"{len(result.added)} files added, {len(result.proposed)} proposed beside existing files"
    )
    for relative in result.added:
        typer.echo(f"  added     {relative}")
    for existing, beside in result.proposed.items():
        typer.echo(f"  kept      {existing}  (template version in {beside})")
    for beside, why in result.held.values():
        typer.echo(f"  proposed  {beside}  ({why})")
    for merged, gained in result.merged.items():
        typer.echo(f"  merged    {merged}  (added {', '.join(gained)})")
    for adapted, why in result.adapted.items():
        typer.echo(f"  adapted   {adapted}  ({why})")
    if result.own_dependencies:
        files = result.own_dependencies
        were = "file {} was" if len(files) == 1 else "files {} were"
        typer.echo(
            f"note: your dependency {were.format(', '.join(files))} not taken over: the template's"
            " environment is pyproject.toml (make setup); add what your code needs to its"
            " dependencies"
        )
    if result.lint_warning:
        typer.echo(f"warning: {result.lint_warning}")
    typer.echo("Everything is staged, nothing committed. Next steps:")
    typer.echo("  merge what you want from each *.mlopsify file into its original, then delete it")
    typer.echo("  git add --all && git commit -m 'Adopt the mlopsify template'")


@app.command()
def assess(
    path: ProjectPath = Path(),
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the report as JSON (docs/assess.md).")
    ] = False,
    run_tests: Annotated[
        bool,
        typer.Option(
            "--run", help="Collect and run the repository's tests with pytest (a copy of HEAD)."
        ),
    ] = False,
) -> None:
    """Report the MLOps maturity of any repository, area by area, with the commands that close gaps.

    Levels are earned by evidence that runs (the CI file passes its provider's checker, the
    pipeline parses, the image runs as non-root...), read from the commit at HEAD.
    """
    from .assessment import assess_repository

    report = assess_repository(path, run_tests=run_tests)
    if as_json:
        typer.echo(json.dumps(report.to_json(), indent=2))
        return
    kind = (
        f"template {report.template_version}"
        if report.template_version
        else "not made with mlopsify"
    )
    typer.echo(f"MLOps maturity of {report.path} ({kind}): {report.score}/{report.max_score}")
    typer.echo(f"{'area':<24} {'level':<11} {'evidence':<34} next")
    for area in report.areas:
        shown = [e.path for e in area.evidence if e.earned and e.level <= area.level]
        evidence = shown[0] if shown else "-"
        following = "; ".join(area.commands) or area.next_step or "-"
        typer.echo(
            f"{area.title:<24} {f'{area.level} {area.level_name}':<11} {evidence:<34} {following}"
        )


fleet_app = typer.Typer(
    cls=_Commands,
    help="Many repositories at once: where each stands, and template updates across all.",
    no_args_is_help=True,
)
app.add_typer(fleet_app, name="fleet")
FleetFile = Annotated[
    Path, typer.Argument(help="The fleet file: YAML listing the repositories (docs/fleet.md).")
]
JobsOption = Annotated[
    int, typer.Option("--jobs", "-j", min=1, help="Repositories worked on at the same time.")
]


def _fleet_progress(label: str, total: int) -> Any:
    """A progress bar on stderr, so that the report on stdout stays clean."""
    return typer.progressbar(length=total, label=label, file=sys.stderr)


@fleet_app.command("status")
def fleet_status_command(
    fleet_file: FleetFile,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    html: Annotated[
        Path | None,
        typer.Option("--html", metavar="FILE", help="Also write the report as a static page."),
    ] = None,
    jobs: JobsOption = 2,
    fresh: Annotated[
        bool, typer.Option("--fresh", help="Read every repository again, not from the cache.")
    ] = False,
) -> None:
    """Each repository's template release, how far behind, update conflicts, assess levels.

    Every repository is read in a scratch clone; a work tree named in the fleet file is only
    read. A repository that cannot be read is listed with the reason.
    """
    from .fleet import read_fleet
    from .fleet_page import fleet_page
    from .fleet_status import fleet_status, status_table

    fleet = read_fleet(fleet_file)
    with _fleet_progress("fleet status", len(fleet.repositories)) as bar:
        status = fleet_status(fleet, jobs=jobs, fresh=fresh, on_done=lambda _: bar.update(1))
    if html is not None:
        html.write_text(fleet_page(status), encoding="utf-8")
    if as_json:
        typer.echo(json.dumps(status.to_json(), indent=2))
        return
    typer.echo("\n".join(status_table(status)))


@fleet_app.command("update")
def fleet_update_command(fleet_file: FleetFile, jobs: JobsOption = 2) -> None:
    """Update each repository behind on a review branch: test, push, open a merge request.

    Work happens in scratch clones; a repository whose remote already has the branch for the
    newest release is skipped. The token is MLOPSIFY_FLEET_TOKEN. Exits 1 when any failed.
    """
    from .fleet import read_fleet
    from .fleet_status import in_parallel
    from .fleet_update import RepositoryUpdate, update_table

    fleet = read_fleet(fleet_file)
    with _fleet_progress("fleet update", len(fleet.repositories)) as bar:
        done = in_parallel("update", fleet.repositories, jobs=jobs, on_done=lambda _: bar.update(1))
    updates = [RepositoryUpdate(**update) for update in done]
    typer.echo("\n".join(update_table(updates)))
    if any(update.state == "failed" for update in updates):
        raise typer.Exit(code=MlopsifyError.exit_code)


class _ConsoleScript:
    """Whether this process runs as the `mlopsify` command (set by :func:`main`)."""

    running = False


def main() -> None:
    """Console-script entry point."""
    _ConsoleScript.running = True
    app()
