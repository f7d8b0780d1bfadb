"""The ``mlopsify`` command: parse arguments, call one library function, print.

Errors a user can cause (:class:`~mlopsify.errors.MlopsifyError`) become one line on
stderr and the error's documented exit code; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, NoReturn

import typer

from ._version import __version__
from .errors import MlopsifyError

app = typer.Typer(
    name="mlopsify",
    help="Take a DevOps repository to MLOps: create, update, extend and assess ML projects.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def fail(error: MlopsifyError) -> NoReturn:
    typer.secho(f"error: {error}", err=True, fg=typer.colors.RED)
    raise typer.Exit(code=error.exit_code)


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


@app.command()
def new(
    destination: Annotated[
        Path, typer.Argument(help="Directory of the new project; must not exist or be empty.")
    ],
    defaults: Annotated[
        bool,
        typer.Option("--defaults", help="Take the default for every question not given by --data."),
    ] = False,
    data: Annotated[
        list[str] | None,
        typer.Option("--data", "-d", metavar="KEY=VALUE", help="Answer one question; repeatable."),
    ] = None,
    answers_file: Annotated[
        Path | None,
        typer.Option(
            "--answers-file", help="YAML file of answers (question: answer); --data wins."
        ),
    ] = None,
) -> None:
    """Create a new MLOps project and make it a git repository with a first commit."""
    from .creation import new_project

    # Answers on the command line make the run non-interactive: the rest take their defaults.
    defaults = defaults or bool(data) or answers_file is not None
    if not defaults and not sys.stdin.isatty():
        # Without a terminal Copier cannot ask: say so before anything is rendered.
        fail(
            MlopsifyError(
                "no terminal to ask the questions on: add --defaults (with --data or --answers-file)"
            )
        )
    try:
        project = new_project(
            destination, data_pairs=data or [], answers_file=answers_file, defaults=defaults
        )
    except MlopsifyError as error:
        fail(error)
    typer.echo(f"Created {project}")
    typer.echo("Next steps:")
    typer.echo(f"  cd {project}")
    typer.echo("  make setup      # create the environment")
    typer.echo("  make pipeline   # run the DVC pipeline: data, validation, training, quality gate")
    typer.echo("  make test       # run the project's tests")


def main() -> None:
    """Console-script entry point."""
    app()
