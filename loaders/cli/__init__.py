"""The `elt` command line (Typer): `app` and its commands, `main` the console script."""

from loaders.cli import commands as _commands  # registers every command on `app`
from loaders.cli.app import app, main

__all__ = ["app", "main"]
del _commands
