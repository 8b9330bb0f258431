"""Sample every GPU through NVML (``nvidia-ml-py``, optional) on a side thread while a point runs.

The thread never touches the load client's event loop; NVML calls are ctypes calls that release the GIL.
Each sample is stamped with ``time.perf_counter_ns`` (the records' clock), so ``metrics.energy`` can cut
the samples to the point's measured window.  Where NVML is absent (no package, no driver, no GPU) the
sampler says why and yields nothing; a GPU that stops answering mid-point is dropped from sampling (its
samples then do not cover the window, and the point's energy is unknown rather than partial).

Not run on a real GPU in this project's CI: the tests drive it with a fake ``pynvml`` module.
"""

from __future__ import annotations

import importlib
import logging
import threading
import time

from speedbench.metrics.energy import GpuSample

log = logging.getLogger(__name__)


def load_nvml():
    """The ``pynvml`` module (shipped by nvidia-ml-py) or None."""
    try:
        return importlib.import_module("pynvml")
    except ImportError:
        return None


class GpuSampler:
    """``with GpuSampler(0.05) as s: ...`` then ``s.samples``; ``s.unavailable`` says why there are none."""

    def __init__(self, interval_s: float = 0.05, nvml=None, indices: list[int] | None = None) -> None:
        self.interval_s = interval_s
        self.indices = indices
        self._nvml = nvml
        self.samples: list[GpuSample] = []
        self.gpus: list[int] = []
        self.lost: dict[int, str] = {}
        self.unavailable: str | None = None
        self._handles: dict[int, object] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._no_counter: set[int] = set()

    def start(self) -> GpuSampler:
        nv = self._nvml or load_nvml()
        if nv is None:
            self.unavailable = "NVML not installed (pip install 'speedbench[gpu]')"
            return self
        try:
            nv.nvmlInit()
            n = nv.nvmlDeviceGetCount()
            wanted = range(n) if self.indices is None else self.indices
            bad = [i for i in wanted if not 0 <= i < n]
            if bad:
                self.unavailable = f"telemetry.gpus {bad}: NVML sees GPUs 0..{n - 1} only"
                self._shutdown(nv)
                return self
            self._handles = {i: nv.nvmlDeviceGetHandleByIndex(i) for i in wanted}
        except Exception as e:  # no driver / no device: telemetry is n/a, never a failure
            self.unavailable = f"NVML unavailable: {e}"
            return self
        if not self._handles:
            self.unavailable = "NVML found no GPU"
            self._shutdown(nv)
            return self
        self._nvml = nv
        self.gpus = sorted(self._handles)
        self._sample_all()
        self._thread = threading.Thread(target=self._loop, name="speedbench-nvml", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> list[GpuSample]:
        if self._thread is not None:
            self._stop.set()
            self._thread.join(timeout=5)
            self._thread = None
            self._sample_all()  # one sample after the window's end, so the window is bracketed
            self._shutdown(self._nvml)
        return self.samples

    def _shutdown(self, nv) -> None:
        try:
            nv.nvmlShutdown()
        except Exception:
            pass

    def _loop(self) -> None:
        next_t = time.monotonic()
        while not self._stop.is_set():
            next_t += self.interval_s
            self._stop.wait(max(0.0, next_t - time.monotonic()))
            if not self._stop.is_set():
                self._sample_all()

    def _sample_all(self) -> None:
        nv = self._nvml
        for i, h in list(self._handles.items()):
            t = time.perf_counter_ns()
            try:
                power = nv.nvmlDeviceGetPowerUsage(h) / 1e3  # mW -> W
            except Exception as e:
                if _gpu_lost(nv, e):
                    self.lost[i] = str(e)
                    del self._handles[i]
                    log.warning("GPU %d stopped answering NVML (%s): its energy is unknown from now on", i, e)
                continue  # a missed read: the energy counter bridges it
            energy = None
            if i not in self._no_counter:
                try:
                    energy = int(nv.nvmlDeviceGetTotalEnergyConsumption(h))
                except Exception:  # not supported (pre-Volta): power is integrated instead
                    self._no_counter.add(i)
            util = mem = None
            try:
                util = float(nv.nvmlDeviceGetUtilizationRates(h).gpu)
                mem = nv.nvmlDeviceGetMemoryInfo(h).used / 2**20
            except Exception:
                pass
            self.samples.append(GpuSample(t, i, power, energy, util, mem))

    def __enter__(self) -> GpuSampler:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def _gpu_lost(nv, e: Exception) -> bool:
    lost = getattr(nv, "NVMLError_GpuIsLost", None)
    return lost is not None and isinstance(e, lost)
