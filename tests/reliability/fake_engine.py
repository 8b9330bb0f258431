"""A test-only engine adapter: the vLLM wire format, served by speedbench.testing.fault_server.

Registered by the tests (``speedbench.engines.register``), never by the package. Fault options travel in
``engine.extra_args`` and are appended to the fault server's argv, exactly as real engine flags would be.
"""

from __future__ import annotations

from speedbench.config import SDConfig
from speedbench.engines.vllm import VLLMAdapter

TARGET = "tests.reliability.fake_engine:FakeAdapter"


class FakeAdapter(VLLMAdapter):
    name = "fake"
    supported_sd = ("off", "ngram")  # lets tests see an unsupported method refused before launch

    def launch_argv(self, sd: SDConfig, host: str, port: int, max_concurrency: int = 256) -> list[str]:
        self.check_sd(sd)
        return [
            self.cfg.python,
            "-m",
            "speedbench.testing.fault_server",
            "--host",
            host,
            "--port",
            str(port),
            "--model-name",
            self.served_model_name,
            "--sd-k",
            str(sd.num_speculative_tokens if sd.enabled else 0),
            *self.cfg.extra_args,
        ]


def register() -> None:
    from speedbench.engines import register as _register

    _register("fake", TARGET)
