"""Model backends: prompts in, n sampled completions out (transformers, vLLM, OpenAI-compatible)."""
