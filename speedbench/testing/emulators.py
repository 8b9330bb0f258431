"""Run an engine emulator:
``python -m speedbench.testing.emulators --engine sglang --port P [--sd-k 3 --accept 0.8,0.6,0.4]``.

Every other flag is the engine's own (``sglang.launch_server`` / ``trtllm-serve``) or an emulator knob
(--accept, --step-ms, --draft-cost, --seed, --startup-delay). Binds loopback only.

``write_engine_shims(dir)`` makes ``python -m sglang.launch_server`` and
``python -m tensorrt_llm.commands.serve`` start the emulators when ``dir`` is on PYTHONPATH, so the real
adapters' launch argv can be exercised end to end without the engines.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path

ENGINES = {"sglang": "speedbench.testing.sglang_emulator", "trtllm": "speedbench.testing.trtllm_emulator"}

_SHIMS = {
    "sglang/__init__.py": "",
    "sglang/launch_server.py": "import sys\nfrom speedbench.testing.sglang_emulator import main\n"
    "sys.exit(main(sys.argv[1:]))\n",
    "tensorrt_llm/__init__.py": "",
    "tensorrt_llm/commands/__init__.py": "",
    "tensorrt_llm/commands/serve.py": "import sys\nfrom speedbench.testing.trtllm_emulator import main\n"
    "sys.exit(main(sys.argv[1:]))\n",
}


def write_engine_shims(directory: str | Path) -> Path:
    root = Path(directory)
    for rel, text in _SHIMS.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0], add_help=False)
    ap.add_argument("--engine", choices=sorted(ENGINES), required=True)
    known, rest = ap.parse_known_args(argv)

    return importlib.import_module(ENGINES[known.engine]).main(rest)


if __name__ == "__main__":
    sys.exit(main())
