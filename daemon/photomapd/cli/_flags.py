"""Command-line flags more than one command shares."""

from __future__ import annotations

import argparse


def add_model_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", help="open_clip model name (default: the config's, ViT-B-32-256)")
    parser.add_argument(
        "--pretrained",
        help="open_clip pretrained tag, or 'none' for random weights (tests and benchmarks; no download)",
    )
