#!/usr/bin/env bash
# Run HERE (a machine that reaches PyPI), from the repo root: fetches into .whl/ the Python 3.12 wheels that
# `studio bench` needs on the GPU machine beyond what that machine has (torch, transformers, huggingface_hub,
# accelerate, peft, safetensors, numpy, Pillow are there; diffusers and pydantic are not). See README.md here.
set -euo pipefail
cd "$(dirname "$0")/../../.."
rm -rf .whl && mkdir .whl
platforms=(--platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64
           --platform manylinux2014_x86_64 --platform manylinux1_x86_64)
# Pinned to what Studio is tested with here (pyproject.toml's floors allow these).
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp "${platforms[@]}" \
  -d .whl diffusers==0.42.1 importlib_metadata pydantic==2.14.3 pydantic_core==2.50.4 annotated_types \
  typing_inspection platformdirs tomli_w
du -sh .whl && ls .whl
