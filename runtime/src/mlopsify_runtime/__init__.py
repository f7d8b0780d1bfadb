"""mlopsify's runtime: the machinery that every generated project runs and no team edits.

A project calls it from dvc.yaml and its Makefile (``python -m mlopsify_runtime.evaluate``) and
from its own steps (``mlopsify_runtime.training.register``). A team changes its behaviour through
the extension points in :mod:`mlopsify_runtime.hooks`, never by editing a copy.
"""

from ._version import __version__

__all__ = ["__version__"]
