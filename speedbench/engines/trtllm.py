"""TensorRT-LLM OpenAI server (``trtllm-serve``, PyTorch backend), per docs/engines/trtllm.md.

Read file by file from the NVIDIA/TensorRT-LLM code index (late 2025-2026 main, 1.2.x-1.3 dev):
commands/serve.py @00209af1 (underscore flags, ``--extra_llm_api_options``), serve/openai_server.py @00057725
(``/health``, ``/metrics`` JSON drained on read, ``/prometheus/metrics``), serve/postprocess_handlers.py and
openai_protocol.py (stream chunks, usage), llmapi/llm_args.py (``speculative_config`` by ``decoding_type``;
``Draft_Target`` in the newest Literal, ``DraftTarget`` in older releases), metrics/collector.py @050f80de.

Everything speedbench relies on goes into the YAML options file, not CLI flags: older releases let the YAML
override the CLI, newer the reverse, so one source of truth is version-proof.

Acceptance, globally: Prometheus counters at ``/prometheus/metrics`` when the server mounts them (only with
``return_perf_metrics``; per-position counters give the number of drafts), else the JSON iteration stats at
``/metrics`` (``enable_iter_perf_stats``), which the server removes once read and keeps in a bounded queue:
the adapter accumulates every row it reads, and the runner polls it during each point
(``poll_during_point``). drafts = ΣnumRequestsWithDraftTokens, draft_tokens = ΣnumDraftTokens,
accepted = ΣnumAcceptedTokens, so AL = 1 + accepted / drafts (what TRT-LLM's per-iteration
``acceptanceLength`` averages). Per request: with ``per_request_spec_decode_stats: true`` (an open pull
request's branch only, so never written for a release: see ``FLOORS``) the choice that carries
``finish_reason`` has a ``speculative_decoding`` block (num_spec_steps, total_draft_tokens,
total_accepted_draft_tokens, acceptance_histogram), read as exact counters.
"""

from __future__ import annotations

import hashlib
import logging
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from speedbench.config import ConfigError, SDConfig
from speedbench.core.acceptance import SpecDecodeCounters, counters_from_histogram
from speedbench.engines.base import EngineAdapter
from speedbench.engines.openai_stream import fold_completion_chunk
from speedbench.engines.prometheus import parse_prometheus, sum_metric
from speedbench.engines.versions import Floor, at_least

if TYPE_CHECKING:
    import aiohttp

    from speedbench.core.records import RequestRecord

log = logging.getLogger(__name__)

M_DRAFT_TOKENS = "trtllm_spec_decode_num_draft_tokens_total"
M_ACCEPTED = "trtllm_spec_decode_num_accepted_tokens_total"
M_DRAFTED_POS = "trtllm_spec_decode_drafted_tokens_total"
M_ACCEPTED_POS = "trtllm_spec_decode_accepted_tokens_total"


_LLM_ARGS = "tensorrt_llm/llmapi/llm_args.py (code index id 7019226376, 1.2/1.3 dev)"
_PER_REQUEST = (
    "NVIDIA/TensorRT-LLM pull request 19311 (open; its branch's serve/postprocess_handlers.py and test, code "
    "index id 68498373284): in no release seen, the latest being 1.3.0rc24"
)
# The 1.2.0 floor is the (Eagle3 decoding_type, max_draft_len for every method): not re-read at the tag.
FLOORS: dict[str, Floor] = {
    f.flag: f
    for f in [
        *(
            Floor(flag, "1.2.0", "tensorrt_llm/commands/serve.py @00209af")
            for flag in ("--host", "--port", "--backend", "--tp_size", "--ep_size", "--extra_llm_api_options")
        ),
        *(
            Floor(key, "1.2.0", _LLM_ARGS)
            for key in (
                "max_batch_size",
                "enable_iter_perf_stats",
                "kv_cache_config.free_gpu_memory_fraction",
                "kv_cache_config.enable_block_reuse",
                "disable_overlap_scheduler",
                "cuda_graph_config.batch_sizes",
                "cuda_graph_config.enable_padding",
                "speculative_config.max_draft_len",
                "speculative_config.speculative_model_dir",
                "speculative_config.num_nextn_predict_layers",
                "speculative_config.max_matching_ngram_size",
                "speculative_config.decoding_type=Eagle3",
                "speculative_config.decoding_type=MTP",
                "speculative_config.decoding_type=NGram",
                "speculative_config.decoding_type=Draft_Target",
            )
        ),
        # strict LlmArgs refuses an unknown key: never written until a release is known to have it
        Floor("per_request_spec_decode_stats", None, _PER_REQUEST),
    ]
}


def speculative_config(sd: SDConfig) -> dict | None:
    if not sd.enabled:
        return None
    k = sd.num_speculative_tokens
    if sd.method == "eagle3":
        # one-model is the default; eagle3_one_model is deprecated and absent from newer signatures
        return {"decoding_type": "Eagle3", "max_draft_len": k, "speculative_model_dir": sd.draft_model}
    if sd.method == "mtp":
        # MTPDecodingConfig sets max_draft_len = num_nextn_predict_layers (default 1): both say k
        return {"decoding_type": "MTP", "max_draft_len": k, "num_nextn_predict_layers": k}
    if sd.method == "ngram":
        return {"decoding_type": "NGram", "max_draft_len": k, "max_matching_ngram_size": sd.prompt_lookup_max}
    if sd.method == "draft_model":
        return {"decoding_type": "Draft_Target", "max_draft_len": k, "speculative_model_dir": sd.draft_model}
    raise ConfigError(f"engine 'trtllm' does not support SD method {sd.method!r}")


def cuda_graph_batch_sizes(max_concurrency: int) -> list[int]:
    """Powers of two up to the sweep's largest concurrency, and that concurrency itself: with padding on, every
    batch up to it replays a graph (TRT-LLM's own default stops at 128, so 256 and 512 would run eager)."""
    sizes = [1 << i for i in range(max_concurrency.bit_length()) if 1 << i < max_concurrency]
    return sizes + [max_concurrency]


def llm_api_options(cfg, sd: SDConfig, max_concurrency: int, version: str | None = None) -> dict:
    """The ``--extra_llm_api_options`` YAML content (LlmArgs / TorchLlmArgs keys) for this engine release."""
    opts: dict = {
        "max_batch_size": max_concurrency,
        "enable_iter_perf_stats": True,  # feeds GET /metrics (JSON iteration stats incl. specDecodingStats)
        "cuda_graph_config": {"batch_sizes": cuda_graph_batch_sizes(max_concurrency), "enable_padding": True},
        # KV block reuse (prefix caching) defaults to true in KvCacheConfig: set both ways, explicitly
        "kv_cache_config": {"enable_block_reuse": bool(cfg.prefix_caching)},
    }
    if cfg.gpu_memory_fraction is not None:
        opts["kv_cache_config"]["free_gpu_memory_fraction"] = cfg.gpu_memory_fraction
    spec = speculative_config(sd)
    if spec is not None:
        opts["speculative_config"] = spec
        if at_least(version, FLOORS["per_request_spec_decode_stats"].since):
            opts["per_request_spec_decode_stats"] = True  # per-request counters on the final chunk
        if sd.method in ("ngram", "draft_model"):
            # these paths run without the overlap scheduler (TRT-LLM docs); the SD-off baseline keeps it,
            # as production would, and the manifest records this file
            opts["disable_overlap_scheduler"] = True
    return opts


_SD_ON_ONLY_WHY = {
    "disable_overlap_scheduler": "TRT-LLM runs n-gram and draft-model SD without the overlap scheduler; the "
    "SD-off baseline keeps it, as production would",
    "per_request_spec_decode_stats": "per-request acceptance counters on each response's final chunk (read "
    "as exact counters); an SD-only statistic, its cost not measured",
}


def flat_options(opts: dict, prefix: str = "") -> dict[str, str]:
    """The options as dotted key -> YAML scalar text (``true``, ``0.85``), to compare two launches."""
    out: dict[str, str] = {}
    for k, v in opts.items():
        if isinstance(v, dict):
            out.update(flat_options(v, f"{prefix}{k}."))
        else:
            out[prefix + k] = yaml.safe_dump(v, default_flow_style=True).strip().removesuffix("...").strip()
    return out


def flat_keys(opts: dict, prefix: str = "") -> list[str]:
    """Dotted YAML keys; ``decoding_type`` with its value, since each value has its own floor."""
    out = []
    for k, v in opts.items():
        key = prefix + k
        if isinstance(v, dict):
            out += flat_keys(v, key + ".")
        else:
            out.append(f"{key}={v}" if k == "decoding_type" else key)
    return out


def request_counters(stats: dict) -> SpecDecodeCounters:
    """Exact per-request counters from a choice's ``speculative_decoding`` block (histogram h[j] = verify steps
    that accepted exactly j drafts; its sum is num_spec_steps, its first moment total_accepted_draft_tokens)."""
    c = counters_from_histogram(
        list(stats["acceptance_histogram"]), int(stats["total_draft_tokens"]), "trtllm.per_request"
    )
    if (c.drafts, c.accepted_tokens) != (stats["num_spec_steps"], stats["total_accepted_draft_tokens"]):
        raise ValueError(f"trtllm speculative_decoding block is inconsistent: {stats}")
    return c


class TRTLLMAdapter(EngineAdapter):
    name = "trtllm"
    # EAGLE-1/2 exist only on the TensorRT backend; trtllm-serve's PyTorch backend maps "Eagle" to Eagle3
    supported_sd = ("off", "eagle3", "mtp", "ngram", "draft_model")
    health_path = "/health"
    poll_interval_s = 0.5  # the iteration-stats queue is bounded: drain it often
    dists = ("tensorrt_llm", "tensorrt-llm")  # as the wheel and as some images record it
    gpu_dists = ("tensorrt_llm", "tensorrt-llm")
    floors = FLOORS

    def __init__(self, cfg) -> None:
        super().__init__(cfg)
        self.files_dir = Path(tempfile.gettempdir()) / "speedbench-trtllm"
        self._iter_totals = SpecDecodeCounters(source="trtllm./metrics")
        self._iter_rows = 0
        self._prometheus: bool | None = None  # unknown until probed once
        self._scrapes = 0
        self._warned = False

    # ---- launch -------------------------------------------------------------------------------------
    def launch_files(self, sd: SDConfig, max_concurrency: int = 256) -> dict[str, str]:
        self.check_sd(sd)
        text = yaml.safe_dump(llm_api_options(self.cfg, sd, max_concurrency, self.version), sort_keys=False)
        # named by content: the same setting always gives the same path, argv stays reproducible
        digest = hashlib.sha256(text.encode()).hexdigest()[:12]
        return {str(self.files_dir / f"llm-api-options-{sd.label}-{digest}.yaml"): text}

    def launch_argv(self, sd: SDConfig, host: str, port: int, max_concurrency: int = 256) -> list[str]:
        c = self.cfg
        if c.data_parallel_size > 1:
            raise ConfigError(
                "engine 'trtllm' has no data-parallel flag; attention DP is enable_attention_dp in "
                "the LLM API options (set engine.data_parallel_size: 1)"
            )
        files = self.launch_files(sd, max_concurrency)
        for path, text in files.items():
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            Path(path).write_text(text)
        argv = [
            c.python,
            "-m",
            "tensorrt_llm.commands.serve",
            "serve",
            str(c.model),
            "--host",
            host,
            "--port",
            str(port),
            "--backend",
            "pytorch",
            "--tp_size",
            str(c.tensor_parallel_size),
        ]
        if c.expert_parallel_size > 1:
            argv += ["--ep_size", str(c.expert_parallel_size)]
        return argv + ["--extra_llm_api_options", next(iter(files))] + list(c.extra_args)

    def emitted_flags(self, sd: SDConfig, max_concurrency: int = 256) -> list[str]:
        argv = super().emitted_flags(sd, max_concurrency)
        return argv + flat_keys(llm_api_options(self.cfg, sd, max_concurrency, self.version))

    def launch_differences(self, sd: SDConfig) -> list[dict]:
        """Every LLM API option the SD-on YAML sets differently from SD off, besides speculative_config itself:
        read from the two option sets, so an option added to SD on alone is declared by construction."""
        if not sd.enabled:
            return []
        off = flat_options(llm_api_options(self.cfg, SDConfig(), 1, self.version))
        on = flat_options(llm_api_options(self.cfg, sd, 1, self.version))
        return [
            {
                "setting": key,
                "sd_off": off.get(key, "not set"),
                "sd_on": on.get(key, "not set"),
                "set_by": "speedbench",
                "why": _SD_ON_ONLY_WHY.get(key, "set for SD on only"),
            }
            for key in sorted(set(off) | set(on))
            if not key.startswith("speculative_config") and off.get(key) != on.get(key)
        ]

    # ---- requests -----------------------------------------------------------------------------------
    def build_request(self, token_ids: list[int], max_tokens: int, fixed_length: bool = False) -> tuple[str, dict]:
        body = {
            "model": self.served_model_name,
            "prompt": token_ids,  # token ids go straight to the engine: no BOS, no tokenizer
            "max_tokens": max_tokens,
            **self.sampling,  # temperature 0.0 (None would mean 1.0)
            "add_special_tokens": False,  # documents intent; id prompts are not re-tokenized anyway
            "detokenize": False,  # token_ids in every chunk (text stays empty): SD-vs-off compares ids
            "stream": True,
            # cumulative usage on every chunk => exact tokens per chunk (= per engine iteration)
            "stream_options": {"include_usage": True, "continuous_usage_stats": True},
        }
        if fixed_length:
            body["ignore_eos"] = True
        return "/v1/completions", body

    def on_event(self, event: dict, rec: RequestRecord, t_ns: int, sent_ids: list[int]) -> None:
        # token_ids are null unless detokenize=false; trtllm-serve does not echo prompt ids
        fold_completion_chunk(event, rec, t_ns, sent_ids)
        for ch in event.get("choices") or ():
            stats = ch.get("speculative_decoding")
            if stats:  # only on the choice with finish_reason, only with per_request_spec_decode_stats
                try:
                    rec.sd = request_counters(stats).to_dict()
                except (KeyError, TypeError, ValueError) as e:  # a bad block loses its counters, not the request
                    log.warning("ignoring trtllm speculative_decoding block of %s: %s", rec.request_id, e)

    # ---- acceptance counters --------------------------------------------------------------------------
    def fold_iteration_stats(self, rows: list[dict]) -> None:
        """Accumulate drained ``/metrics`` rows; nothing is lost as long as every response is folded."""
        drafts = draft_tokens = accepted = 0
        for row in rows:
            st = row.get("specDecodingStats") or {}
            drafts += int(st.get("numRequestsWithDraftTokens") or 0)
            draft_tokens += int(st.get("numDraftTokens") or 0)
            accepted += int(st.get("numAcceptedTokens") or 0)
        self._iter_rows += len(rows)
        self._iter_totals = self._iter_totals + SpecDecodeCounters(
            drafts, draft_tokens, accepted, (), "trtllm./metrics"
        )

    @staticmethod
    def counters_from_prometheus(text: str) -> SpecDecodeCounters | None:
        samples = parse_prometheus(text)
        draft_tokens = sum_metric(samples, M_DRAFT_TOKENS)
        if draft_tokens is None:
            return None
        per_pos: dict[int, float] = {}
        drafted_pos0 = 0.0
        for name, labels, value in samples:
            if "token_position" not in labels:
                continue
            pos = int(labels["token_position"])
            if name == M_ACCEPTED_POS:
                per_pos[pos] = per_pos.get(pos, 0.0) + value
            elif name == M_DRAFTED_POS and pos == 0:
                drafted_pos0 += value  # every draft has a position 0: its count is the number of drafts
        if not drafted_pos0 and draft_tokens:
            return None  # older collector without per-position counters: drafts unknown, use the JSON rows
        return SpecDecodeCounters(
            int(drafted_pos0),
            int(draft_tokens),
            int(sum_metric(samples, M_ACCEPTED) or 0),
            tuple(int(per_pos[i]) for i in sorted(per_pos)),
            "trtllm./prometheus/metrics",
        )

    async def _drain(self, session: aiohttp.ClientSession, base_url: str) -> None:
        async with session.get(f"{base_url}/metrics") as r:
            r.raise_for_status()
            rows = await r.json(content_type=None)
        if isinstance(rows, list):
            self.fold_iteration_stats(rows)

    async def poll_during_point(self, session: aiohttp.ClientSession, base_url: str) -> None:
        if not self._prometheus:
            await self._drain(session, base_url)

    async def scrape_counters(self, session: aiohttp.ClientSession, base_url: str) -> SpecDecodeCounters | None:
        if self._prometheus is not False:
            async with session.get(f"{base_url}/prometheus/metrics") as r:
                found = self.counters_from_prometheus(await r.text()) if r.status == 200 else None
            self._prometheus = found is not None
            if found is not None:
                return found
        await self._drain(session, base_url)
        self._scrapes += 1
        if not self._iter_rows and self._scrapes > 1 and not self._warned:
            self._warned = True
            log.warning(
                "trtllm at %s returned no iteration stats (needs enable_iter_perf_stats: true): "
                "no global acceptance counters",
                base_url,
            )
        # cumulative since this adapter started reading: deltas around a point cover exactly that point
        return self._iter_totals

    async def server_info(self, session: aiohttp.ClientSession, base_url: str) -> dict:
        info: dict = {}
        try:
            async with session.get(f"{base_url}/version") as r:
                if r.status == 200:
                    info["engine_version"] = (await r.json(content_type=None)).get("version")
            async with session.get(f"{base_url}/v1/models") as r:
                if r.status == 200:
                    info["served_models"] = [m.get("id") for m in (await r.json()).get("data") or []]
        except Exception as e:  # info is best effort, never fatal
            info["error"] = repr(e)
        return info
