"""`speedbench model prepare` hands the engine's Python the converter script that really exists.

The conversion itself (GGUF -> HF bf16, ~1-2 min) runs for real in `make test`/`make demo` from an empty
SPEEDBENCH_HOME; here a stand-in engine Python checks the script it is given and runs its `--help`, so a
wrong script path (the CLI once built it from its own folder: speedbench/cli/engines/convert_gguf.py) fails
in the fast suite too.
"""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

from click.testing import CliRunner

from speedbench.cli import main


def _fake_engine_python(tmp_path: Path) -> Path:
    fake = tmp_path / "engine-python"
    fake.write_text(f"""#!/bin/sh
# `-c PROBE MODULES...`: model prepare's check that the environment has the converter's packages (all here)
[ "$1" = "-c" ] && exit 0
# argv: SCRIPT --out DIR (what `model prepare` runs)
test -f "$1" || {{ echo "no such script: $1" >&2; exit 9; }}
"{sys.executable}" "$1" --help >/dev/null || exit 8
mkdir -p "$3" && : > "$3/config.json" && : > "$3/model.safetensors"
echo "$1" > "$3/script-used"
""")
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    return fake


def test_model_prepare_runs_the_converter_script(tmp_path):
    out = tmp_path / "model"
    res = CliRunner().invoke(
        main, ["model", "prepare", "--engine-python", str(_fake_engine_python(tmp_path)), "--out", str(out)]
    )
    assert res.exit_code == 0, res.output
    used = Path((out / "script-used").read_text().strip())
    assert used.name == "convert_gguf.py" and used.is_file()
    assert "model ready" in res.output


def test_model_prepare_skips_a_prepared_model(tmp_path):
    out = tmp_path / "model"
    out.mkdir()
    (out / "config.json").write_text("{}")
    (out / "model.safetensors").write_bytes(b"")
    res = CliRunner().invoke(main, ["model", "prepare", "--engine-python", os.devnull, "--out", str(out)])
    assert res.exit_code == 0 and "model ready" in res.output
