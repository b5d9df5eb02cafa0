"""The options of step-level proving that `prove` and `eval` share (`--search best-first`)."""

from __future__ import annotations

from typing import Annotated

import typer

from prover.errors import UsageError
from prover.prove.search import SearchConfig

SEARCHES = ("best-first",)
PANEL = "Search"

Expansions = Annotated[
    int | None,
    typer.Option(
        "--expansions",
        help=f"With --search: states expanded per search at most "
        f"(default {SearchConfig.expansions}).",
        min=1,
        rich_help_panel=PANEL,
    ),
]
TacticsPerState = Annotated[
    int | None,
    typer.Option(
        "--tactics-per-state",
        help=f"With --search: tactics sampled per expanded state "
        f"(default {SearchConfig.tactics_per_state}).",
        min=1,
        rich_help_panel=PANEL,
    ),
]


def refuse_search_options(
    search: str | None,
    expansions: int | None,
    tactics_per_state: int | None,
    verifier: str | None,
    *,
    not_with_search: tuple[tuple[bool, str], ...] = (),
) -> None:
    """One line for each option that does not go with (or without) --search;
    `not_with_search`: the command's own (given, message) pairs refused beside --search."""
    if search is None:
        if expansions is not None or tactics_per_state is not None:
            raise UsageError("--expansions and --tactics-per-state apply only with --search")
        return
    if search not in SEARCHES:
        raise UsageError(f"unknown search {search!r}; known: {', '.join(SEARCHES)}")
    for given, message in not_with_search:
        if given:
            raise UsageError(message)
    if verifier:
        raise UsageError(
            "--search needs a local verifier: the remote verifier API has no tactic mode "
            "(drop --verifier)"
        )
