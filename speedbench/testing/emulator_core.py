"""What the engine emulators share: an acceptance model, deterministic tokens and a continuous-batching loop.

Test fixtures only. The loop runs one iteration every ``step_s`` over all running requests, like a real
engine: a newly admitted request gets its first token (prefill), a running one gets 1 token (SD off) or
1 + accepted drafts (SD on), where accepted is drawn from a chain acceptance model with a seeded RNG per
request, so a request's acceptance does not depend on what else is running.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import random
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

EOS_EVERY = 50  # a token id divisible by this is "EOS" for requests that do not ignore it


@dataclass(frozen=True)
class AcceptanceModel:
    """Chain acceptance: ``accept[i]`` = P(draft position i accepted | positions < i accepted).

    Positions beyond the list reuse its last value. ``k == 0`` is SD off (one token per step).
    """

    k: int = 0
    accept: tuple[float, ...] = (0.7,)

    def p(self, i: int) -> float:
        return self.accept[min(i, len(self.accept) - 1)] if self.accept else 0.0

    def draw(self, rng: random.Random) -> int:
        n = 0
        while n < self.k and rng.random() < self.p(n):
            n += 1
        return n

    @property
    def expected_accepted(self) -> float:
        total, run = 0.0, 1.0
        for i in range(self.k):
            run *= self.p(i)
            total += run
        return total

    @property
    def expected_acceptance_length(self) -> float:
        """1 + E[accepted drafts per verify step] (bonus token included)."""
        return 1.0 + self.expected_accepted


def output_token(prompt_ids: list[int], position: int, vocab: int) -> int:
    """Greedy output is a pure function of the prompt and position, so SD on and off emit the same ids."""
    seed = sum(prompt_ids[-8:]) * 1_000_003 + len(prompt_ids)
    return 3 + (seed + position * 7_919) % (vocab - 3)


def token_text(token: int) -> str:
    return f" w{token}"


@dataclass
class EmuRequest:
    prompt_ids: list[int]
    max_tokens: int
    ignore_eos: bool = True
    temperature: float = 0.0
    rid: str = ""
    eos_every: int = EOS_EVERY  # a token id divisible by this is EOS (--eos-every: the mean natural length)
    output: list[int] = field(default_factory=list)
    finish_reason: str | None = None
    verify_ct: int = 0
    accepted: int = 0
    histogram: list[int] = field(default_factory=list)
    drafted_per_pos: list[int] = field(default_factory=list)
    accepted_per_pos: list[int] = field(default_factory=list)
    # one item per iteration that emitted tokens: the new ids; None after the last one
    steps: asyncio.Queue = field(default_factory=asyncio.Queue)
    rng: random.Random = field(default_factory=random.Random)
    # when set, called with each item instead of queueing it: a writer that runs inside the engine's
    # iteration saves a task wake-up per request per step (the cost that capped the emulator's token rate)
    on_step: Callable[[list[int] | None], None] | None = None

    def push(self, item: list[int] | None) -> None:
        if self.on_step is not None:
            self.on_step(item)
        else:
            self.steps.put_nowait(item)

    def next_token(self) -> int:
        pos = len(self.output)
        if self.temperature > 0:  # sampling: anything goes (a harness that forgot temperature 0 sees this)
            return self.rng.randrange(3, 32_000)
        return output_token(self.prompt_ids, pos, 32_000)

    def emit(self, n: int) -> list[int]:
        """Append up to ``n`` tokens; stop at max_tokens or EOS. Returns the new ids."""
        new = []
        for _ in range(n):
            tok = self.next_token()
            self.output.append(tok)
            new.append(tok)
            if len(self.output) >= self.max_tokens:
                self.finish_reason = "length"
                break
            if not self.ignore_eos and tok % self.eos_every == 0:
                self.finish_reason = "stop"
                break
        return new


@dataclass
class IterationStats:
    iteration: int
    latency_ms: float
    context_requests: int
    context_tokens: int
    generation_requests: int
    drafted_requests: int
    draft_tokens: int
    accepted_tokens: int
    active: int
    queued: int
    completed: int


class BatchEngine:
    def __init__(
        self,
        model: AcceptanceModel,
        step_s: float,
        max_running: int,
        seed: int = 0,
        draft_cost: float = 0.1,
        on_iteration: Callable[[IterationStats], None] | None = None,
        on_finish: Callable[[EmuRequest], None] | None = None,
    ) -> None:
        self.model = model
        # drafting and verifying k tokens costs time: SD steps are slower, as on a real engine
        self.step_s = step_s * (1.0 + draft_cost * model.k)
        self.max_running = max_running
        self.seed = seed
        self.on_iteration = on_iteration
        self.on_finish = on_finish
        self.waiting: deque[EmuRequest] = deque()
        self.running: list[EmuRequest] = []
        self.iteration = 0
        self._wake = asyncio.Event()
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._loop())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    def submit(self, req: EmuRequest) -> None:
        digest = hashlib.sha256(f"{self.seed}:{req.prompt_ids}".encode()).digest()
        req.rng = random.Random(int.from_bytes(digest[:8], "big"))
        self.waiting.append(req)
        self._wake.set()

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        due = loop.time()
        while True:
            if not self.running and not self.waiting:
                self._wake.clear()
                await self._wake.wait()
            admitted: list = []
            while self.waiting and len(self.running) + len(admitted) < self.max_running:
                admitted.append(self.waiting.popleft())
            # one iteration every step_s, its own work included (a GPU step's time is its work); an
            # iteration that ran late starts the next period from now rather than catching up in a burst
            now = loop.time()
            due = max(due + self.step_s, now)
            await asyncio.sleep(due - now)
            self._iterate(admitted)

    def _iterate(self, admitted: list[EmuRequest]) -> None:
        self.iteration += 1
        k = self.model.k
        drafted = draft_tokens = accepted_total = 0
        for req in self.running:
            acc = self.model.draw(req.rng) if k else 0
            new = req.emit(1 + acc)
            if k:
                # only drafts that reached the output count (the step may be cut by max_tokens / EOS)
                acc = len(new) - 1
                req.verify_ct += 1
                req.accepted += acc
                req.histogram += [0] * (acc + 1 - len(req.histogram))
                req.histogram[acc] += 1
                req.drafted_per_pos += [0] * (k - len(req.drafted_per_pos))
                req.accepted_per_pos += [0] * (k - len(req.accepted_per_pos))
                for i in range(k):
                    req.drafted_per_pos[i] += 1
                    req.accepted_per_pos[i] += i < acc
                drafted += 1
                draft_tokens += k
                accepted_total += acc
            req.push(new)
        for req in admitted:
            req.push(req.emit(1))
        gen = len(self.running)
        self.running += admitted
        done = [r for r in self.running if r.finish_reason]
        self.running = [r for r in self.running if not r.finish_reason]
        for req in done:
            req.push(None)
            if self.on_finish:
                self.on_finish(req)
        if self.on_iteration:
            self.on_iteration(
                IterationStats(
                    self.iteration,
                    self.step_s * 1e3,
                    len(admitted),
                    sum(len(r.prompt_ids) for r in admitted),
                    gen,
                    drafted,
                    draft_tokens,
                    accepted_total,
                    len(self.running),
                    len(self.waiting),
                    len(done),
                )
            )


def add_common_args(ap: argparse.ArgumentParser) -> None:
    """Emulator-only knobs (not engine flags); engine.extra_args can pass them in launch mode."""
    g = ap.add_argument_group("emulator")
    g.add_argument("--sd-k", type=int, default=None, help="shorthand: SD on with this draft length")
    g.add_argument("--accept", default="0.7", help="chain acceptance probabilities per draft position")
    g.add_argument("--step-ms", type=float, default=2.0, help="latency of one engine iteration (SD off)")
    g.add_argument("--draft-cost", type=float, default=0.1, help="extra step latency per draft token (fraction)")
    g.add_argument("--seed", type=int, default=0)
    g.add_argument(
        "--eos-every",
        type=int,
        default=EOS_EVERY,
        help="a greedy token id divisible by this ends a request that does not ignore EOS: natural output "
        "lengths spread roughly geometrically with this mean (then capped by max_tokens)",
    )
    g.add_argument("--startup-delay", type=float, default=0.0, help="seconds before readiness turns 200")


def parse_accept(spec: str) -> tuple[float, ...]:
    vals = tuple(float(x) for x in spec.split(",") if x.strip())
    if not vals or any(not 0.0 <= v <= 1.0 for v in vals):
        raise SystemExit(f"--accept {spec!r}: give probabilities in [0, 1], e.g. 0.8,0.6,0.4")
    return vals


def check_loopback(host: str) -> str:
    if host not in ("127.0.0.1", "localhost", "::1"):
        raise SystemExit(f"emulators bind loopback only (got --host {host})")
    return "::1" if host == "::1" else "127.0.0.1"
