"""Lean verification: the REPL protocol, sandboxed REPL processes, a pool, strict acceptance."""
