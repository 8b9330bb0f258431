"""SGLang server (``python -m sglang.launch_server``), per docs/engines/sglang.md.

Read from the PyPI wheel sglang==0.5.23 (paths under sglang/srt/): arg_groups/fields/{spec,schedule,serving,
observability,parallel}.py (flags), entrypoints/http_server.py (``/generate``, ``/health_generate``, SSE framing),
managers/tokenizer_manager.py ``_calculate_spec_decoding_metrics`` (final-chunk ``meta_info`` SD keys),
observability/metrics_collector.py (``/metrics``). Older key names from wheels 0.4.10.post2 .. 0.5.22.

Acceptance, per request: the final chunk's ``meta_info`` carries ``spec_verify_ct`` (verify steps) and the
correct-drafts histogram/counts (names changed across versions; all are read). Globally: SGLang exposes only
gauges over a 40-iteration window plus, since 0.5.18, the counter ``sglang:spec_verify_calls_total``. All
three counters below are tokenizer-side and bumped when a request finishes, so their deltas around a point
are exact:  drafts = Δverify_calls, accepted = Δgeneration_tokens − Δverify_calls − Δnum_requests
(each request's first token comes from prefill, every verify step emits 1 bonus token + its accepted drafts),
draft_tokens = drafts × k (chain: topk 1). SGLang's own ``spec_accept_length`` = tokens / verify steps
counts the prefill token too, so it reads slightly higher than speedbench's 1 + accepted / drafts.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from speedbench.config import ConfigError, SDConfig
from speedbench.core.acceptance import SpecDecodeCounters, counters_from_histogram
from speedbench.engines.base import EngineAdapter
from speedbench.engines.prometheus import parse_prometheus, sum_metric
from speedbench.engines.versions import Floor, spelling

if TYPE_CHECKING:
    import aiohttp

    from speedbench.core.records import RequestRecord

log = logging.getLogger(__name__)

# speedbench SD method -> --speculative-algorithm (NEXTN is SGLang's name for MTP heads; resolved to EAGLE)
ALGORITHM = {"eagle": "EAGLE", "eagle3": "EAGLE3", "mtp": "NEXTN", "ngram": "NGRAM", "draft_model": "STANDALONE"}

# what /server_info reports as each asked algorithm once resolved (speculative_hook.py:109-114 in 0.5.23)
_RESOLVED = {"NEXTN": ("NEXTN", "EAGLE")}
# /server_info (0.5.23, http_server.py:863); /get_server_info: its deprecated alias (l.853), the only name in
# older releases
_SERVER_INFO_PATHS = ("/server_info", "/get_server_info")
# resolved ServerArgs fields kept from it (fields/spec.py:31-66, schedule.py:31, serving.py:262, parallel.py:45)
_SERVER_ARGS = (
    "speculative_algorithm",
    "speculative_num_steps",
    "speculative_eagle_topk",
    "speculative_num_draft_tokens",
    "max_running_requests",
    "stream_interval",
    "tp_size",
    "disable_radix_cache",  # prefix caching as it was (fields/memory.py:64): attach mode cannot know it otherwise
    "disable_overlap_schedule",
)

M_VERIFY = "sglang:spec_verify_calls_total"
M_GEN_TOKENS = "sglang:generation_tokens_total"
M_REQUESTS = "sglang:num_requests_total"
M_NUM_DRAFT_TOKENS = "sglang:spec_num_draft_tokens"  # gauge, 0.5.18+: k + 1 for a chain
M_ACCEPT_LENGTH = "sglang:spec_accept_length"  # gauge: present whenever SD runs

# final-chunk meta_info names, newest first (see tests/fixtures/engines/sglang/meta_info_spec_keys_by_version.json)
_HISTOGRAM_KEYS = ("spec_correct_drafts_histogram", "spec_accept_histogram")
_CORRECT_KEYS = ("spec_num_correct_drafts", "spec_accepted_drafts", "spec_accept_token_num")
_PROPOSED_KEYS = ("spec_num_proposed_drafts", "spec_proposed_drafts", "spec_draft_token_num")


# Read from the PyPI wheels (sglang/srt/server_args.py, or arg_groups/fields/*.py from 0.5.22 on): a flag's floor
# is the earliest of 0.4.10.post2 / 0.5.18 / 0.5.22 / 0.5.23 that has it (see docs/engines/sglang.md).
_WHEELS = "sglang/srt/server_args.py (wheel {})"
FLOORS: dict[str, Floor] = {
    f.flag: f
    for f in [
        *(
            Floor(flag, "0.4.10.post2", _WHEELS.format("0.4.10.post2"))
            for flag in (
                "--model-path",
                "--served-model-name",
                "--host",
                "--port",
                "--tp-size",
                "--max-running-requests",
                "--enable-metrics",
                "--stream-interval",
                "--dp-size",
                "--ep-size",
                "--mem-fraction-static",
                "--disable-radix-cache",
                "--speculative-algorithm=EAGLE",
                "--speculative-algorithm=EAGLE3",
                "--speculative-algorithm=NEXTN",
                "--speculative-draft-model-path",
                "--speculative-num-steps",
                "--speculative-eagle-topk",
                "--speculative-num-draft-tokens",
            )
        ),
        *(
            # present in the 0.5.12 wheel (issue 28's reading; the floors were 0.5.18, the next wheel read before)
            Floor(flag, "0.5.12", _WHEELS.format("0.5.12"))
            for flag in (
                "--speculative-algorithm=NGRAM",
                "--speculative-algorithm=STANDALONE",
                "--speculative-ngram-min-bfs-breadth",
                "--speculative-ngram-max-bfs-breadth",
                "--incremental-streaming-output",
            )
        ),
        Floor("--cuda-graph-max-bs-decode", "0.5.18", _WHEELS.format("0.5.18")),
        # renamed (0.5.18 keeps the old names as deprecated aliases; 0.5.22 has neither)
        Floor("--cuda-graph-max-bs", "0.4.10.post2", _WHEELS.format("0.4.10.post2 .. 0.5.18"), until="0.5.18"),
        Floor("--stream-output", "0.4.10.post2", _WHEELS.format("0.4.10.post2 .. 0.5.18"), until="0.5.18"),
    ]
}
RENAMED_SINCE = "0.5.18"
# flags in engine.extra_args that turn on DP attention, which SGLang refuses with n-gram and standalone drafts
_DP_ATTENTION = ("--enable-dp-attention", "--attn-dp-size", "--attention-data-parallel-size")


def dp_attention_requested(extra_args: list[str]) -> bool:
    for i, a in enumerate(extra_args):
        name, eq, val = a.partition("=")
        if name == "--enable-dp-attention":
            return True
        if name in _DP_ATTENTION:
            raw = val if eq else (extra_args[i + 1] if i + 1 < len(extra_args) else "")
            if raw.isdigit() and int(raw) > 1:
                return True
    return False


def _flag_value(args: list[str], flag: str) -> str | None:
    """The value of ``flag`` in an argv (``--flag v`` or ``--flag=v``; the last one wins), None when absent."""
    value = None
    for i, a in enumerate(args):
        name, eq, val = a.partition("=")
        if name == flag:
            value = val if eq else (args[i + 1] if i + 1 < len(args) else "")
    return value


def _engine_difference(setting: str, sd_off: str, sd_on: str, why: str) -> dict:
    return {"setting": setting, "sd_off": sd_off, "sd_on": sd_on, "set_by": "engine", "why": why}


def _first(d: dict, keys: tuple[str, ...]):
    for k in keys:
        if d.get(k) is not None:
            return d[k]
    return None


def speculative_args(sd: SDConfig) -> list[str]:
    """SD flags for a linear chain of ``k`` drafts. All of steps/topk/draft-tokens are set: with any unset,
    SGLang picks its own (a 5-step top-4 tree for Llama), and draft length k would mean something else."""
    if not sd.enabled:
        return []
    k = sd.num_speculative_tokens
    argv = ["--speculative-algorithm", ALGORITHM[sd.method]]
    if sd.method == "ngram":
        # trie-based matcher: prompt_lookup_min/max have no SGLang equivalent; breadth 1 = one chain of k
        return argv + [
            "--speculative-num-draft-tokens",
            str(k + 1),
            "--speculative-ngram-min-bfs-breadth",
            "1",
            "--speculative-ngram-max-bfs-breadth",
            "1",
        ]
    if sd.draft_model:  # MTP heads live inside the target checkpoint unless a path is given
        argv += ["--speculative-draft-model-path", sd.draft_model]
    return argv + [
        "--speculative-num-steps",
        str(k),
        "--speculative-eagle-topk",
        "1",
        "--speculative-num-draft-tokens",
        str(k + 1),
    ]


class SGLangAdapter(EngineAdapter):
    name = "sglang"
    supported_sd = ("off", "eagle", "eagle3", "mtp", "ngram", "draft_model")
    # does a real 1-token generation: ready means the model answers, not just that HTTP is up
    health_path = "/health_generate"
    dists = ("sglang",)
    gpu_dists = ("sglang",)
    floors = FLOORS
    valued_flags = ("--speculative-algorithm",)

    def __init__(self, cfg) -> None:
        super().__init__(cfg)
        self._draft_len: int | None = None  # k of the last launched SD setting (for counters SGLang omits)
        self._warned = False

    def check_sd(self, sd: SDConfig) -> None:
        super().check_sd(sd)
        # remembered for counters SGLang does not expose; with --endpoint this is the one SD setting given
        self._draft_len = sd.num_speculative_tokens if sd.enabled else None

    def launch_argv(self, sd: SDConfig, host: str, port: int, max_concurrency: int = 256) -> list[str]:
        self.check_sd(sd)
        c = self.cfg
        argv = [
            c.python,
            "-m",
            "sglang.launch_server",
            "--model-path",
            str(c.model),
            "--served-model-name",
            self.served_model_name,
            "--host",
            host,
            "--port",
            str(port),
            "--tp-size",
            str(c.tensor_parallel_size),
            # SD silently caps running requests at 48 when unset; size it for the sweep, SD off alike
            "--max-running-requests",
            str(max_concurrency),
            # every sweep point replays a decode CUDA graph (SGLang sizes its own by GPU memory, e.g. 160
            # on H100 in 0.4.10): vLLM's and TRT-LLM's are sized to the sweep alike
            spelling(self.version, "--cuda-graph-max-bs-decode", "--cuda-graph-max-bs", RENAMED_SINCE),
            str(max_concurrency),
            "--enable-metrics",
            "--stream-interval",
            "1",  # one SSE event per decode step: chunk sizes = tokens per step
            # deltas, as vLLM and TRT-LLM send: the default re-sends all output so far on every event
            spelling(self.version, "--incremental-streaming-output", "--stream-output", RENAMED_SINCE),
        ]
        if not c.prefix_caching:  # SGLang's radix (prefix) cache is on unless disabled
            argv.append("--disable-radix-cache")
        if c.data_parallel_size > 1:
            argv += ["--dp-size", str(c.data_parallel_size)]
        if c.expert_parallel_size > 1:
            argv += ["--ep-size", str(c.expert_parallel_size)]
        if c.gpu_memory_fraction is not None:
            argv += ["--mem-fraction-static", str(c.gpu_memory_fraction)]
        if sd.enabled and sd.method in ("ngram", "draft_model") and dp_attention_requested(c.extra_args):
            # speculative_hook.py: "Currently ngram speculative decoding does not support dp attention" (and
            # standalone alike); plain --dp-size replicas are fine
            raise ConfigError(
                f"engine 'sglang' does not support SD method {sd.method!r} with DP attention "
                "(engine.extra_args); plain engine.data_parallel_size works"
            )
        return argv + speculative_args(sd) + list(c.extra_args)

    def launch_differences(self, sd: SDConfig) -> list[dict]:
        """What SGLang itself sets differently for SD on, read from 0.5.23's source (docs/engines/sglang.md).
        The overlap scheduler stays on for SD on GPU: speculative_hook.py turns it off only on CPU
        (``_disable_overlap_schedule_for_cpu``, l.66-79, called for the EAGLE family l.1096 and NGRAM l.1292)."""
        if not sd.enabled:
            return []
        extra = list(self.cfg.extra_args)
        out = []
        if _flag_value(extra, "--device") == "cpu":
            out.append(
                _engine_difference(
                    "overlap scheduler",
                    "on",
                    "off",
                    "SGLang 0.5.23 disables it for speculative decoding on CPU "
                    "(speculative_hook.py:66-79); on GPU both launches keep it",
                )
            )
        else:
            out.append(
                _engine_difference(
                    "decode CUDA-graph batch sizes",
                    "1, 2, 4, 8, 12, then every 8 to 256, 16 to 512, 32 beyond",
                    "1-8, then every 2 to 32, 4 to 64, 8 to 256, 16 beyond",
                    "SGLang 0.5.23 captures a denser list with SD (cuda_graph_hook.py:500-531): a batch size between "
                    "two captured ones pads to the next, by different amounts in the two launches",
                )
            )
        if "--enable-mixed-chunk" in extra and sd.method in ("ngram", "draft_model"):
            out.append(
                _engine_difference(
                    "mixed chunked prefill",
                    "on",
                    "off",
                    "SGLang 0.5.23 turns it off for NGRAM always and for "
                    "STANDALONE (no mixed-chunk support; speculative_hook.py:1108-1116, 1304-1308)",
                )
            )
        return out

    def build_request(self, token_ids: list[int], max_tokens: int, fixed_length: bool = False) -> tuple[str, dict]:
        # SGLang's default temperature is 1.0: overridden; it stops at EOS unless told to ignore it
        sampling: dict = {"max_new_tokens": max_tokens, **self.sampling}
        if fixed_length:
            sampling["ignore_eos"] = True
        return "/generate", {"input_ids": token_ids, "sampling_params": sampling, "stream": True}

    def on_event(self, event: dict, rec: RequestRecord, t_ns: int, sent_ids: list[int]) -> None:
        meta = event.get("meta_info") or {}
        ids = event.get("output_ids")
        text = event.get("text")
        prev = rec.chunk_tokens[-1] if rec.chunk_tokens else 0
        cum = meta.get("completion_tokens")
        if cum is None:  # default streaming is cumulative: the id list length is the running total
            cum = len(ids) if ids is not None else prev
        if ids is not None:
            if len(ids) == cum:  # cumulative (default); in delta mode this only happens on the first chunk
                rec.output_ids = list(ids)
                if text is not None:
                    rec.text = text
            else:  # --incremental-streaming-output: deltas, possibly several steps coalesced
                rec.output_ids.extend(ids)
                rec.text += text or ""
        # one event may cover several steps when the HTTP writer lags: tokens come from the count, not events
        rec.add_chunk(t_ns, cum)
        if meta.get("prompt_tokens") is not None:
            rec.server_prompt_tokens = meta["prompt_tokens"]
        finish = meta.get("finish_reason")
        if finish:
            rec.finish_reason = finish.get("type") if isinstance(finish, dict) else str(finish)
            rec.completion_tokens = cum
            sd = self.request_counters(meta)
            if sd is not None:
                rec.sd = sd.to_dict()

    def request_counters(self, meta: dict) -> SpecDecodeCounters | None:
        """Per-request counters from a final ``meta_info`` of any SGLang version since 0.4.10."""
        verify = meta.get("spec_verify_ct")
        if verify is None:
            return None
        hist = _first(meta, _HISTOGRAM_KEYS)
        correct = _first(meta, _CORRECT_KEYS)
        proposed = _first(meta, _PROPOSED_KEYS)
        if hist is not None and proposed is not None:
            return counters_from_histogram(list(hist), int(proposed), "sglang.meta_info")
        if correct is not None and proposed is not None:
            return SpecDecodeCounters(int(verify), int(proposed), int(correct), (), "sglang.meta_info")
        # 0.4.10: only verify steps; accepted follows from the token count (first token is from prefill)
        if self._draft_len is None or meta.get("completion_tokens") is None:
            return None
        accepted = max(0, int(meta["completion_tokens"]) - 1 - int(verify))
        return SpecDecodeCounters(int(verify), int(verify) * self._draft_len, accepted, (), "sglang.meta_info")

    def counters_from_metrics(self, text: str) -> SpecDecodeCounters | None:
        samples = parse_prometheus(text)
        verify = sum_metric(samples, M_VERIFY)
        if verify is None:
            if sum_metric(samples, M_ACCEPT_LENGTH) is not None and not self._warned:
                self._warned = True
                log.warning(
                    "SGLang runs SD but has no %s counter (needs sglang >= 0.5.18): global acceptance "
                    "length is unavailable; per-request meta_info counters are used instead",
                    M_VERIFY,
                )
            return None
        gen = sum_metric(samples, M_GEN_TOKENS) or 0.0
        reqs = sum_metric(samples, M_REQUESTS) or 0.0
        # a gauge per scheduler (one per DP rank), all k + 1: summing them would give N·(k + 1)
        width = max((v for n, _, v in samples if n == M_NUM_DRAFT_TOKENS), default=None)
        k = int(width) - 1 if width else self._draft_len
        if k is None:
            return None  # SD off (or unknown draft length): nothing to count
        accepted = max(0, int(gen - verify - reqs))
        return SpecDecodeCounters(int(verify), max(int(verify) * k, accepted), accepted, (), "sglang./metrics")

    async def scrape_counters(self, session: aiohttp.ClientSession, base_url: str) -> SpecDecodeCounters | None:
        async with session.get(f"{base_url}/metrics") as r:
            if r.status == 404:
                if not self._warned:
                    self._warned = True
                    log.warning(
                        "SGLang at %s has no /metrics (start it with --enable-metrics): no global acceptance counters",
                        base_url,
                    )
                return None
            r.raise_for_status()
            return self.counters_from_metrics(await r.text())

    async def server_info(self, session: aiohttp.ClientSession, base_url: str) -> dict:
        info: dict = {}
        try:
            data, failed = None, []
            for path in _SERVER_INFO_PATHS:
                async with session.get(f"{base_url}{path}") as r:
                    if r.status == 200:
                        data = await r.json()
                        break
                    failed.append(f"GET {path}: HTTP {r.status}")
            if isinstance(data, dict):
                info["engine_version"] = data.get("version")
                # only keys the server has: an absent one is "not reported", never "null" (see sd_contradictions)
                info["server_args"] = {k: data[k] for k in _SERVER_ARGS if k in data}
                if isinstance(data.get("disable_radix_cache"), bool):
                    info["prefix_caching"] = not data["disable_radix_cache"]
            else:
                info["error"] = "; ".join(failed) if failed else f"/server_info: not an object: {data!r}"
            async with session.get(f"{base_url}/v1/models") as r:
                if r.status == 200:
                    data = (await r.json()).get("data") or []
                    info["served_models"] = [m.get("id") for m in data]
        except Exception as e:  # info is best effort, never fatal
            info["error"] = repr(e)
        return info

    def sd_contradictions(self, sd: SDConfig, info: dict) -> list[str]:
        """The resolved server args of /server_info against the setting (docs/engines/sglang.md, section 2):
        SD on or off (``speculative_algorithm``: null when off), the algorithm (MTP's NEXTN is resolved to
        EAGLE), and the chain (``speculative_eagle_topk`` 1, ``speculative_num_draft_tokens`` = k + 1)."""
        args = info.get("server_args")
        if not isinstance(args, dict) or "speculative_algorithm" not in args:
            return []
        algo = args["speculative_algorithm"]
        if not sd.enabled:
            return [] if algo is None else [f"SGLang reports speculative_algorithm={algo!r}, but {sd.label} is SD off"]
        asked = ALGORITHM[sd.method]
        if algo is None:
            return [f"SGLang reports speculative_algorithm=None (SD off), but {sd.label} asked for {asked}"]
        out = []
        if str(algo).upper() not in _RESOLVED.get(asked, (asked,)):
            out.append(f"SGLang reports speculative_algorithm={algo!r}, but {sd.label} asked for {asked}")
        k = sd.num_speculative_tokens
        topk, width = _int(args.get("speculative_eagle_topk")), _int(args.get("speculative_num_draft_tokens"))
        if topk is not None and topk != 1:
            out.append(f"SGLang reports speculative_eagle_topk={topk} (a tree), but {sd.label} asked for a chain (1)")
        elif topk == 1 and width is not None and width - 1 != k:
            out.append(
                f"SGLang reports speculative_num_draft_tokens={width} (draft length {width - 1}), "
                f"but {sd.label} asked for draft length {k}"
            )
        return out


def _int(v: object) -> int | None:
    """``v`` when the report gave an integer (JSON true/false are not counts), else None."""
    return v if isinstance(v, int) and not isinstance(v, bool) else None
