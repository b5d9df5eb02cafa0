# The image `docker run prover ...` runs: the `prover` CLI, a pinned Lean toolchain, Mathlib and
# the Lean REPL, all built for the same Lean version (REPL and Mathlib must match it).
#
#   docker build -t prover .                                  # default Lean v4.24.0
#   docker build -t prover --build-arg LEAN_VERSION=v4.24.0 .
#
# Stage `lean` does the network-heavy work (elan, git clones, Mathlib cache); the final stage
# copies only its results, so curl and the build tools stay out of the image, and editing the
# Python code never invalidates the multi-GB Mathlib layers.

ARG LEAN_VERSION=v4.24.0

# ---------------------------------------------------------------------------------------------
FROM python:3.11-slim-bookworm AS lean
ARG LEAN_VERSION

# pipefail so a failed download in `curl | sh` fails the build.
SHELL ["/bin/bash", "-o", "pipefail", "-c"]

# git: lake clones Mathlib's dependencies; curl: elan installer and Mathlib's cache downloads.
# No C toolchain: Lean ships its own clang and linker for `lake build`.
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl git \
    && rm -rf /var/lib/apt/lists/*

# Every tag this build needs, checked before hours of downloads: the toolchain (elan installs
# `leanprover/lean4:TAG`, the leanprover/lean4 release of that tag: "Managing Toolchains with
# Elan", https://lean-lang.org/doc/reference/latest/), and Mathlib and the REPL at the same tag.
# `git ls-remote --exit-code` exits 2 when no ref matches, other codes when the remote cannot be
# read (git-ls-remote(1), https://git-scm.com/docs/git-ls-remote).
RUN for repo in leanprover/lean4 leanprover-community/mathlib4 leanprover-community/repl; do \
        status=0; \
        git ls-remote --exit-code --tags "https://github.com/${repo}.git" \
            "refs/tags/${LEAN_VERSION}" > /dev/null || status=$?; \
        if [ "${status}" -eq 2 ]; then \
            echo "LEAN_VERSION=${LEAN_VERSION}: no tag ${LEAN_VERSION} in https://github.com/${repo}" >&2; \
            exit 1; \
        elif [ "${status}" -ne 0 ]; then \
            echo "cannot list the tags of https://github.com/${repo} (git exit ${status})" >&2; \
            exit 1; \
        fi; \
    done

# elan outside any home directory, so the non-root user can use it read-only.
ENV ELAN_HOME=/opt/elan
ENV PATH=/opt/elan/bin:$PATH
RUN curl -sSfL https://raw.githubusercontent.com/leanprover/elan/master/elan-init.sh \
    | sh -s -- -y --no-modify-path --default-toolchain "leanprover/lean4:${LEAN_VERSION}"

# Mathlib at the tag matching the toolchain; prebuilt .olean files from the cache instead of
# hours of compiling, then `lake build` to check that nothing is left to build.
RUN git clone --depth 1 --branch "${LEAN_VERSION}" \
    https://github.com/leanprover-community/mathlib4.git /opt/lean/mathlib4
WORKDIR /opt/lean/mathlib4
RUN lake exe cache get && lake build

# The REPL at the same tag; it is run as `lake env .../repl` from inside mathlib4.
RUN git clone --depth 1 --branch "${LEAN_VERSION}" \
    https://github.com/leanprover-community/repl.git /opt/lean/repl
WORKDIR /opt/lean/repl
RUN lake build

# ---------------------------------------------------------------------------------------------
FROM python:3.11-slim-bookworm

# git at run time: lake checks its dependencies' checkouts when it loads the workspace.
# safe.directory: those checkouts belong to root, the REPL runs as `lean`, and git refuses
# repositories owned by another user otherwise.
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates git \
    && rm -rf /var/lib/apt/lists/* \
    && git config --system --add safe.directory '*'

# Root-owned and world-readable: the REPL (and a proof) can read Mathlib but never alter it.
COPY --from=lean /opt/elan /opt/elan
COPY --from=lean /opt/lean /opt/lean

ENV ELAN_HOME=/opt/elan \
    PATH=/opt/elan/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1

# The project itself, from the build context (see .dockerignore), with the extras that
# `prover prove` needs: `hf` (transformers, CPU torch by default). For vLLM on GPUs:
#   docker build --build-arg EXTRAS=hf,gpu \
#     --build-arg TORCH_INDEX=https://download.pytorch.org/whl/cu124 -t prover:gpu .
ARG EXTRAS=hf
ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu
COPY . /opt/prover
WORKDIR /opt/prover
RUN pip install --no-cache-dir --extra-index-url "${TORCH_INDEX}" ".[${EXTRAS}]"

RUN useradd --create-home --uid 1000 --shell /bin/bash lean \
    && mkdir -p /data /cache/huggingface \
    && chown lean:lean /data /cache /cache/huggingface

# PROVER_IN_CONTAINER: the code runs the REPL directly, since this container is the sandbox.
# PROVER_REPL / PROVER_REPL_CWD: how the code starts one REPL (from inside the Mathlib project,
# so `lake env` puts Mathlib on the search path). HF_HOME: model weights go to a mounted cache;
# PROVER_CACHE: so do converted GGUF models (prover/models/gguf_cache.py), kept across `--rm`.
ENV PROVER_IN_CONTAINER=1 \
    PROVER_REPL="lake env /opt/lean/repl/.lake/build/bin/repl" \
    PROVER_REPL_CWD=/opt/lean/mathlib4 \
    HF_HOME=/cache/huggingface \
    PROVER_CACHE=/cache/prover

# Numeric uid (the `lean` user above): a host or orchestrator can verify it is not root.
USER 1000:1000
WORKDIR /data

# Last build step: the verifier judges its canaries (honest proofs, every known cheat class,
# the red-team corpus) against this image's own Lean and REPL, as the `lean` user. An image
# whose verifier misjudges any of them against real Lean is never built.
RUN prover selftest

ENTRYPOINT ["prover"]
