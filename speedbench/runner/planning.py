"""SweepPlanner: everything about a sweep that needs no server — the checks ``speedbench sweep --dry-run``
runs (model, tokenizer, port, engine release and flags, GPUs, context, prompt counts), the points and each
point's load plan. BenchmarkRunner (speedbench.runner.sweep) runs what it plans."""

from __future__ import annotations

import logging
from pathlib import Path

from speedbench import preflight
from speedbench.config import BenchmarkConfig, ConfigError, SDConfig
from speedbench.data.pretokenize import PromptSet, prepare_prompts
from speedbench.data.turns import NextTurn, last_turn_tokens
from speedbench.engines import get_adapter
from speedbench.engines.base import EngineAdapter
from speedbench.engines.container import check_launch
from speedbench.engines.image_release import ImageRelease, check_release
from speedbench.engines.versions import version_of
from speedbench.env_info import engine_python_versions
from speedbench.load.plan import LoadPlan
from speedbench.load.schedule import PromptBudget, grid_note, prompt_budget

log = logging.getLogger(__name__)


class SweepPlanner:
    """The checks and plans of one sweep of ``config`` (no server, no results folder)."""

    def __init__(self, config: BenchmarkConfig) -> None:
        self.config = config
        self.adapter: EngineAdapter = get_adapter(config.engine)
        self._engine_env: dict | None = None  # versions in the engine's environment, read by validate()
        self._reply_end_id: int | None = None  # multi-turn: the template's end-of-turn token (prompts meta)
        self.image_release: ImageRelease | None = None  # container launch: the engine release in the image
        self.release_note: str | None = None  # a dry run's line on a release it could not read from the image

    def validate(self, dry_run: bool = False) -> None:
        """Everything that can be checked before a server starts (a container's engine release from the image
        when held; a ``dry_run`` unable to read it says why in ``release_note`` and uses the tag's hint)."""
        cfg = self.config
        for sd in cfg.sd:
            self.adapter.check_sd(sd)
        if cfg.engine.endpoint and len(cfg.sd) != 1:
            raise ConfigError(
                "with --endpoint the server's SD setting is fixed by whoever started it: "
                "give exactly one SD setting (e.g. --sd off or --sd ngram:3)"
            )
        if (
            not cfg.engine.endpoint
            and cfg.engine.model
            and not Path(cfg.engine.model).exists()
            and not _looks_like_hub_id(cfg.engine.model)
        ):
            raise ConfigError(f"model path not found: {cfg.engine.model}")
        self.tokenizer()
        if not cfg.engine.endpoint:
            preflight.check_port(cfg.engine.host, cfg.engine.port)
            preflight.check_tp_heads(cfg.engine.model, cfg.engine.tensor_parallel_size)
            if cfg.engine.launcher == "venv":
                preflight.check_engine_python(cfg.engine.python)
                # asked once (an interpreter that hangs costs its timeout once); the manifest records the same
                # answer. In a container the engine's Python is inside the image: the digest is recorded instead.
                self._engine_env = engine_python_versions(cfg.engine.python)
                self.adapter.installed_version = version_of(self._engine_env, self.adapter.dists)
                self.adapter.check_versions(cfg.sd, max(cfg.load.concurrency))  # every flag of every setting
                preflight.check_gpus(self.adapter, cfg.engine, self._engine_env)
        if cfg.engine.launcher != "venv":
            if cfg.engine.endpoint:
                raise ConfigError("engine.launcher starts a server; with --endpoint nothing is launched")
            if not dry_run:  # a dry run previews commands where no runtime is (it says so)
                check_launch(cfg.engine)  # a pinned image and a runtime on PATH, one clear line otherwise
            self.image_release, self.release_note = check_release(
                self.adapter, cfg.engine, cfg.sd, max(cfg.load.concurrency), dry_run=dry_run
            )
        if cfg.data.isl:  # every prompt is exactly isl tokens: refuse before building a prompt that cannot fit
            preflight.check_context([cfg.data.isl], cfg.load.output_len, self._local_context())

    def check_prompts_fit(self, prompts: PromptSet) -> None:
        """Prompt + output within the served context: from the launch flags or the model's config.json."""
        preflight.check_context(self._input_lens(prompts), self.config.load.output_len, self._local_context())

    def _input_lens(self, prompts: PromptSet) -> list[int]:
        """Longest input each prompt sends: its last turn, with the earlier replies in context."""
        return [last_turn_tokens(p, self.config.load.output_len) for p in prompts.prompts]

    def _local_context(self) -> tuple[int, str] | None:
        """The served context as known without a server: launch flags, else the model's config.json."""
        ec = self.config.engine
        return preflight.flag_context_len(ec.extra_args) or (
            None if ec.endpoint else preflight.model_context_len(ec.model)
        )

    def tokenizer_path(self) -> str | None:
        """The tokenizer prompts are built with: data.tokenizer, else the model's own (None: neither given)."""
        return self.config.data.tokenizer or self.config.engine.model

    def tokenizer(self) -> str:
        """tokenizer_path(), required: ConfigError when there is none (an attached server with no --tokenizer)."""
        path = self.tokenizer_path()
        if not path:
            raise ConfigError("no tokenizer: set data.tokenizer (--tokenizer) when attaching with --endpoint")
        return path

    def points(self) -> list[tuple[SDConfig, int]]:
        """Every (SD setting, concurrency) pair of the sweep, in the order they run."""
        return [(sd, c) for sd in self.config.sd for c in self.config.load.concurrency]

    def prompt_budget(self, concurrency: int, num_prompts: int) -> PromptBudget:
        """The point's measured conversations; ConfigError when it would have to repeat prompts."""
        lc = self.config.load
        try:
            return prompt_budget(
                num_prompts,
                concurrency,
                lc.requests_per_point,
                allow_repeats=lc.allow_repeats,
                by_duration=lc.duration_s is not None,
                closed_loop=lc.mode == "closed",
            )
        except ValueError as e:
            raise ConfigError(str(e)) from None

    def check_prompt_counts(self, num_prompts: int) -> str | None:
        """The sweep's prompt-count rule over its whole grid (the one place: the sweep and --dry-run call it).
        ConfigError when a point would have to repeat prompts; else the one line that explains a concurrency
        the prompts cannot fill (each such point keeps every conversation in flight), or None."""
        budgets = {c: self.prompt_budget(c, num_prompts) for c in self.config.load.concurrency}
        return grid_note(num_prompts, budgets, self.config.data.split)

    def load_plan(self, concurrency: int, num_prompts: int) -> LoadPlan:
        """The load client's plan for one point at ``concurrency`` over a prompt set of ``num_prompts``."""
        lc = self.config.load
        b = self.prompt_budget(concurrency, num_prompts)
        return LoadPlan(
            concurrency=concurrency,
            num_requests=b.measured,
            warmup_requests=concurrency if lc.warmup_requests is None else lc.warmup_requests,
            max_tokens=lc.output_len,
            fixed_length=lc.fixed_length,
            request_timeout_s=lc.request_timeout_s,
            mode=lc.mode,
            request_rate=lc.request_rate,
            arrival=lc.arrival,
            duration_s=lc.duration_s,
            cooldown=lc.cooldown,
            order=lc.prompt_order,
            seed=lc.seed,
            workers=lc.client_workers,
            stream_idle_timeout_s=lc.stream_idle_timeout_s,
            http_client=lc.http_client,
            headers=self.config.engine.auth_headers(),
            next_turn=NextTurn(self.tokenizer_path(), self._reply_end_id) if self.config.data.turns == "all" else None,
        )

    def check_offline(self, dry_run: bool = False) -> PromptSet:
        """Every check that needs no server, the prompt set's included (``speedbench sweep --dry-run`` runs
        exactly these, so a dry run that passes is a sweep that starts); returns the prompt set."""
        self.validate(dry_run=dry_run)
        return self._checked_prompts()

    def _checked_prompts(self) -> PromptSet:
        """The prompt set, refused when a prompt cannot fit the context or a point's budget cannot be met."""
        cfg = self.config
        prompts = prepare_prompts(cfg.data, self.tokenizer())
        self.check_prompts_fit(prompts)
        # refused up front: never a repeated prompt found half-way through a sweep
        note = self.check_prompt_counts(len(prompts.prompts))
        if note:
            log.warning("%s", note)
        return prompts


def _looks_like_hub_id(model: str) -> bool:
    return model.count("/") == 1 and not model.startswith((".", "/", "~"))
