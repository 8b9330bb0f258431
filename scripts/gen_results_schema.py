#!/usr/bin/env python
"""Write docs/schema/*.schema.json, the JSON Schema of each results-folder document, from the typed models
(speedbench/core/documents.py, speedbench/metrics/point_doc.py: the one description of those files). Run after changing a model:

    python scripts/gen_results_schema.py          # rewrite docs/schema/
    python scripts/gen_results_schema.py --check  # exit 1 when a checked-in file differs (what the test does)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from speedbench.results import schema_texts  # noqa: E402  (after the path is set)

SCHEMA_DIR = ROOT / "docs" / "schema"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="only compare; exit 1 when a file differs")
    args = ap.parse_args()
    texts = schema_texts()
    stale = [n for n, t in texts.items() if not (SCHEMA_DIR / n).is_file() or (SCHEMA_DIR / n).read_text() != t]
    extra = sorted(p.name for p in SCHEMA_DIR.glob("*.schema.json") if p.name not in texts)
    if args.check:
        for n in stale + extra:
            print(f"docs/schema/{n} is out of date: run python scripts/gen_results_schema.py", file=sys.stderr)
        return 1 if stale or extra else 0
    SCHEMA_DIR.mkdir(parents=True, exist_ok=True)
    for n in stale:
        (SCHEMA_DIR / n).write_text(texts[n], encoding="utf-8")
        print(f"wrote docs/schema/{n}")
    for n in extra:  # a document that no longer exists
        (SCHEMA_DIR / n).unlink()
        print(f"removed docs/schema/{n}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
