"""What a resting daemon keeps out of its process, and that whatever needs it back gets it (a fresh interpreter each:
the test process has long imported everything)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest


def run(script: str) -> list[str]:
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, check=False,
                          env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


def test_lancedb_works_without_pandas_and_pandas_comes_back_when_let_in() -> None:
    script = (
        "import sys\n"
        "from photomapd.memory import keep_unused_out, let_unused_back_in\n"
        "keep_unused_out()\n"
        "import lancedb, pyarrow.dataset\n"
        "print('pandas' in sys.modules)\n"
        "let_unused_back_in()\n"
        "import pandas\n"
        "print('pandas' in sys.modules)\n"
    )
    assert run(script) == ["False", "True"]


def test_the_ray_engine_lets_pandas_back_in_for_ray_data() -> None:
    pytest.importorskip("ray")
    script = (
        "import sys\n"
        "from photomapd.memory import keep_unused_out\n"
        "keep_unused_out()\n"
        "import lancedb\n"
        "from photomapd.scale.engine import require_ray\n"
        "require_ray()\n"
        "print('pandas' in sys.modules, 'ray.data' in sys.modules)\n"
    )
    assert run(script) == ["True", "True"]
