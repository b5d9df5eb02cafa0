"""A tiny randomly initialised Llama and a character-level tokenizer, built offline: the trainers'
tests and the step benchmark run on them, with no model hub."""

from __future__ import annotations

import string
from typing import Any

from tokenizers import Tokenizer, decoders, models
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

SPECIALS = ("<pad>", "<eos>", "<unk>")
# Trainer settings for runs on these on a CPU (GRPOConfig / AlphaDPGConfig keywords).
CPU_SETTINGS: dict[str, Any] = {
    "use_cpu": True,
    "bf16": False,
    "report_to": [],
    "save_strategy": "no",
    "gradient_checkpointing": False,  # the models are small; recomputation only costs time
    "disable_tqdm": True,
    "seed": 0,
}
PRINTABLE = string.printable[:-5]  # letters, digits, punctuation, space; no \t\n\r\x0b\x0c


def toy_tokenizer(alphabet: str = PRINTABLE) -> PreTrainedTokenizerFast:
    """One token per character of `alphabet`; a run of other characters reads as one <unk>."""
    vocab = {token: i for i, token in enumerate((*SPECIALS, *dict.fromkeys(alphabet)))}
    model = models.BPE(vocab=vocab, merges=[], unk_token="<unk>", fuse_unk=True)  # no merges
    tokenizer = Tokenizer(model)
    tokenizer.decoder = decoders.Fuse()  # characters back together, no spaces between
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        pad_token="<pad>",
        eos_token="<eos>",
        unk_token="<unk>",
        padding_side="left",
    )


def toy_model(
    tokenizer: PreTrainedTokenizerFast, *, hidden: int = 64, layers: int = 2, seed: int = 0
) -> LlamaForCausalLM:
    import torch

    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden,
        intermediate_size=4 * hidden,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=4,
        max_position_embeddings=1024,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=None,
        tie_word_embeddings=False,
    )
    return LlamaForCausalLM(config)
