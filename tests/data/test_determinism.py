import subprocess
import sys

import pytest

from speedbench.config import DataConfig
from speedbench.data.pretokenize import prepare_prompts

CHILD = """
import sys
from speedbench.config import DataConfig
from speedbench.data.pretokenize import prepare_prompts
ps = prepare_prompts(DataConfig(split=sys.argv[1], isl=sys.argv[2] or None, prompts_per_category=3,
                                cache_dir=sys.argv[3]), sys.argv[4], refresh=True)
print(ps.fingerprint, ps.ids_sha256)
"""


@pytest.mark.slow  # loads the tokenizer again (another dir or process): seconds each
def test_same_ids_across_runs_and_processes(gemma, cache_dir, tmp_path):
    for split, isl in (("throughput", "1k"), ("qualitative-mini", "")):
        cfg = DataConfig(split=split, isl=isl or None, prompts_per_category=3, cache_dir=cache_dir)
        a = prepare_prompts(cfg, gemma, refresh=True)
        b = prepare_prompts(cfg, gemma, refresh=True)
        hit = prepare_prompts(cfg, gemma)
        assert (
            [p.token_ids for p in a.prompts] == [p.token_ids for p in b.prompts] == [p.token_ids for p in hit.prompts]
        )
        out = subprocess.run(
            [sys.executable, "-c", CHILD, split, isl, cache_dir, gemma], capture_output=True, text=True, check=True
        ).stdout.split()
        assert out == [a.fingerprint, a.ids_sha256]
