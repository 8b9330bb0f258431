"""Issue 18: each attack on `speedbench serve-api`, reproduced against a real uvicorn process on 127.0.0.1.

One service for the module, started as the README says (no --token: one is generated and printed once), with
one --allow-root; it runs under `timeout`, so it stops by itself even if this process dies.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from speedbench.cli import main
from speedbench.testing.fake_openai import FakeOpenAIServer

SERVICE_LIFETIME_S = 600  # hard bound on the subprocess (timeout(1)); the fixture stops it far earlier
EVIL = "http://evil.example"


@dataclass
class Service:
    base: str
    token: str
    root: Path  # the one --allow-root
    outside: Path  # a folder the service was not given
    out: Path  # --output-dir
    log: Path

    @property
    def auth(self) -> dict:
        return {"Authorization": f"Bearer {self.token}"}

    def client(self, **headers) -> httpx.Client:
        return httpx.Client(base_url=self.base, timeout=10, headers=headers)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def service(tmp_path_factory, tiny_tokenizer):
    root = tmp_path_factory.mktemp("allowed")
    shutil.copytree(tiny_tokenizer, root / "tok")
    outside = tmp_path_factory.mktemp("outside")
    out = root / "results"
    out.mkdir()
    port = _free_port()
    log = root / "serve.log"
    env = {k: v for k, v in os.environ.items() if k != "SPEEDBENCH_API_TOKEN"}
    with open(log, "wb") as f:
        proc = subprocess.Popen(
            [
                "timeout",
                str(SERVICE_LIFETIME_S),
                sys.executable,
                "-m",
                "speedbench.cli",
                "serve-api",
                "--port",
                str(port),
                "--output-dir",
                str(out),
                "--allow-root",
                str(root),
            ],
            env=env,
            stdout=f,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            cwd=root,
        )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert proc.poll() is None, f"serve-api exited: {log.read_text()}"
            assert time.monotonic() < deadline, f"serve-api did not come up: {log.read_text()}"
            time.sleep(0.2)
        m = re.search(r"shown once\): (\S+)", log.read_text())
        assert m, f"no generated token printed: {log.read_text()}"
        yield Service(base, m.group(1), root, outside, out, log)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)


def launch_body(svc: Service, **engine) -> dict:
    """A launch-mode config whose every path lies under the allowed root."""
    (svc.root / "model").mkdir(exist_ok=True)
    return {
        "engine": {"name": "vllm", "model": str(svc.root / "model"), **engine},
        "sd": [{"method": "off"}],
        "data": {"tokenizer": str(svc.root / "tok"), "prompts_per_category": 1},
        "load": {"concurrency": [1], "output_len": 8},
    }


def test_token_is_generated_printed_once_and_required_everywhere_but_health(service):
    assert service.log.read_text().count(service.token) == 1 and len(service.token) >= 32
    with service.client() as c:
        for path in ("/runs", "/docs", "/openapi.json", "/compare?ids=a,b", "/runs/x/report"):
            r = c.get(path)
            assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer", path
        assert c.get("/runs", headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert c.get("/runs", headers={"Authorization": f"Basic {service.token}"}).status_code == 401
        assert c.post("/runs", json=launch_body(service)).status_code == 401
        assert c.get("/health").json() == {"status": "ok"}
        assert c.get("/runs", headers=service.auth).status_code == 200


def test_engine_python_named_by_a_request_never_runs(service):
    marker = service.outside / "ran.txt"
    script = service.root / "evil.sh"
    script.write_text(f'#!/bin/sh\necho "$@" > {marker}\n')
    script.chmod(0o755)
    with service.client(**service.auth) as c:
        for r in (
            c.post("/runs", json=launch_body(service, python=str(script))),
            c.post("/runs?preset=cpu-demo", json={"engine": {"python": str(script)}}),
        ):
            assert r.status_code == 403, r.text
            assert r.json()["detail"].startswith("engine.python cannot be set over REST")
        time.sleep(1.0)  # a queued run would have launched by now
        assert not marker.exists()
        assert c.get("/runs").json() == []


@pytest.mark.parametrize(
    "field,engine",
    [
        ("engine.extra_args", {"extra_args": ["--trust-remote-code"]}),
        ("engine.env", {"env": {"LD_PRELOAD": "/tmp/x.so"}}),
        ("engine.env", {"env": {}}),
        ("engine.host", {"host": "0.0.0.0"}),
    ],
)
def test_engine_arguments_and_environment_are_the_operators(service, field, engine):
    with service.client(**service.auth) as c:
        r = c.post("/runs", json=launch_body(service, **engine))
        assert r.status_code == 403 and r.json()["detail"].startswith(f"{field} cannot be set over REST")
        r = c.post("/runs", json={**launch_body(service), "output_dir": str(service.outside)})
        assert r.status_code == 403 and r.json()["detail"].startswith("output_dir cannot be set over REST")


def test_cross_site_requests_are_refused(service):
    body = json.dumps(launch_body(service, python="/bin/true"))
    page = {"Content-Type": "text/plain", "Origin": EVIL}  # a simple request: no CORS preflight
    with service.client() as c:
        assert c.post("/runs", content=body, headers=page).status_code == 403
        r = c.post("/runs", content=body, headers={**page, **service.auth})
        assert r.status_code == 403 and "cross-origin request refused" in r.json()["detail"]
        r = c.post("/runs", json=json.loads(body), headers={"Origin": EVIL, **service.auth})
        assert r.status_code == 403
        r = c.post("/runs", content=body, headers={"Content-Type": "text/plain", **service.auth})
        assert r.status_code == 415 and "application/json" in r.json()["detail"]
        r = c.post(
            "/runs", content="a=1", headers={"Content-Type": "application/x-www-form-urlencoded", **service.auth}
        )
        assert r.status_code == 415
        # DNS rebinding: the page's own name resolving to 127.0.0.1
        assert c.get("/runs", headers={"Host": "evil.example", **service.auth}).status_code == 403
        # the service's own origin (its /docs page) is fine
        assert c.get("/runs", headers={"Origin": service.base, **service.auth}).status_code == 200
    with service.client(**service.auth) as c:  # nothing was queued by any of the above
        assert c.get("/runs").json() == []


def test_paths_outside_the_allowed_roots_are_refused(service):
    (service.root / "link").symlink_to(service.outside)
    cases = [
        ("engine.model", {"engine": {"name": "vllm", "model": str(service.outside)}}),
        ("data.tokenizer", {"data": {"tokenizer": "/etc"}}),
        ("data.tokenizer", {"data": {"tokenizer": str(service.root / "link")}}),  # symlink out
        ("data.tokenizer", {"data": {"tokenizer": str(service.root / ".." / "x")}}),
        ("data.split", {"data": {"split": str(service.outside / "prompts.jsonl")}}),
        ("data.cache_dir", {"data": {"cache_dir": str(service.outside)}}),
        ("sd[1].draft_model", {"sd": [{"method": "off"}, {"method": "eagle3", "draft_model": "/heads/e3"}]}),
    ]
    with service.client(**service.auth) as c:
        for field, over in cases:
            body = launch_body(service)
            for section, values in over.items():
                body[section] = {**body[section], **values} if isinstance(values, dict) else values
            r = c.post("/runs", json=body)
            assert r.status_code == 403, (field, r.text)
            assert r.json()["detail"].startswith(f"{field}: ") and "outside the folders" in r.json()["detail"]
        r = c.post("/runs?preset=..%2F..%2Fetc%2Fx", json={})
        assert r.status_code == 422 and "unknown preset" in r.json()["detail"]


def test_run_ids_cannot_leave_the_output_folder(service):
    elsewhere = service.outside / "someone-elses-run"
    elsewhere.mkdir()
    (elsewhere / "manifest.json").write_text(json.dumps({"status": "complete", "prompts": {}}))
    (service.out / "escape").symlink_to(elsewhere)
    with service.client(**service.auth) as c:
        for path in (
            "/runs/escape",
            "/runs/escape/report",
            "/runs/%2E%2E",
            "/runs/%2E%2E/report",
            "/runs/..%2Foutside",
            "/compare?ids=escape,escape",
            "/compare?ids=..,..",
        ):
            assert c.get(path).status_code == 404, path
        assert "escape" not in [r["id"] for r in c.get("/runs").json()]


@pytest.mark.slow
def test_report_and_compare_are_the_clis(service):
    """Real sweeps over REST; /runs/{id}/report and /compare give what `speedbench report/compare` give,
    and refuse what they refuse: other prompt ids (409 / exit 2) and another output length."""

    def run(c, **load) -> str:
        body = {
            "engine": {"name": "vllm", "endpoint": srv.url, "served_model_name": "fake-model"},
            "sd": [{"method": "ngram", "num_speculative_tokens": 3}],
            "data": {
                "tokenizer": str(service.root / "tok"),
                "prompts_per_category": 1,
                "cache_dir": str(service.root / "cache"),
            },
            "load": {"concurrency": [1], "output_len": 12, **load},
        }
        r = c.post("/runs", json=body)
        assert r.status_code == 202, r.text
        deadline = time.monotonic() + 120
        while (info := c.get(f"/runs/{r.json()['id']}").json())["status"] in ("queued", "running"):
            assert time.monotonic() < deadline
            time.sleep(0.2)
        assert info["status"] == "complete", info
        return info["id"]

    def cli(*args):
        return CliRunner().invoke(main, [str(a) for a in args])

    with FakeOpenAIServer(sd_k=3) as srv, service.client(**service.auth) as c:
        a, b, short = run(c), run(c), run(c, output_len=4)
        out = service.out
        rep = c.get(f"/runs/{a}/report").json()
        doc = json.loads(cli("report", out / a, "--format", "json").stdout)
        assert {**rep, "generated_at": None} == {**doc, "generated_at": None}
        same = c.get(f"/compare?ids={a},{b}&format=md")
        assert same.status_code == 200 and same.text.rstrip("\n") == cli(
            "compare", out / a, out / b, "--format", "md"
        ).stdout.rstrip("\n")
        # the same folder but other token ids: the CLI always refused, REST used to compare
        other = out / "other-ids"
        shutil.copytree(out / b, other)
        m = json.loads((other / "manifest.json").read_text())
        m["prompts"]["ids_sha256"] = "0" * 64
        (other / "manifest.json").write_text(json.dumps(m))
        r, res = c.get(f"/compare?ids={a},other-ids"), cli("compare", out / a, other)
        assert r.status_code == 409 and "different prompt sets" in r.json()["detail"]
        assert res.exit_code == 2 and "different prompt sets" in res.output
        # another output length (issue 22.3): refused by both, named, unless explicitly allowed
        r, res = c.get(f"/compare?ids={a},{short}"), cli("compare", out / a, out / short)
        assert r.status_code == 409 and f"output_len {a}=12, {short}=4" in r.json()["detail"]
        assert res.exit_code == 2 and f"output_len {a}=12, {short}=4" in res.output
        r = c.get(f"/compare?ids={a},{short}&allow_generation_mismatch=true")
        assert r.status_code == 200 and "output_len" in r.headers["x-speedbench-warning-1"]


def test_presets_from_the_operators_preset_dir_set_what_requests_cannot(tmp_path):
    """The engine environment comes from the operator's side: a --preset-dir preset may set engine.python/env."""
    from fastapi.testclient import TestClient

    from speedbench.api.policy import SubmitPolicy
    from speedbench.api.rest import create_app
    from speedbench.api.runs import RunManager
    from speedbench.runner import SweepResult

    presets = tmp_path / "presets"
    presets.mkdir()
    (presets / "site.yaml").write_text(
        json.dumps(
            {
                "engine": {
                    "name": "vllm",
                    "model": str(tmp_path),
                    "python": "/opt/engine/bin/python",
                    "env": {"X": "1"},
                },
                "sd": [{"method": "off"}],
            }
        )
    )
    queued = []

    class Runner:  # runner-shaped: records the config the service would run
        def __init__(self, config, progress=False, on_point=None):
            queued.append(config)

        def validate(self):
            pass

        def run(self, results_dir):
            return SweepResult(Path(results_dir), status="complete")

    manager = RunManager(tmp_path / "out", runner_factory=Runner)
    app = create_app(tmp_path / "out", token="t", manager=manager, policy=SubmitPolicy(preset_dirs=(presets,)))
    with TestClient(app, headers={"Authorization": "Bearer t"}) as c:
        assert c.post("/runs?preset=site", json={"load": {"concurrency": [2]}}).status_code == 202
        assert queued[0].engine.python == "/opt/engine/bin/python" and queued[0].engine.env == {"X": "1"}
        assert queued[0].output_dir == str(tmp_path / "out")
        r = c.post("/runs?preset=nope", json={})
        assert r.status_code == 422 and "site" in r.json()["detail"] and "cpu-demo" in r.json()["detail"]


def test_an_origin_the_operator_allowed_may_call_with_the_token(tmp_path):
    from fastapi.testclient import TestClient

    from speedbench.api.rest import create_app

    dash = "https://dash.example"
    with TestClient(create_app(tmp_path, token="t", allow_origins=[dash])) as c:
        pre = c.options(
            "/runs",
            headers={
                "Origin": dash,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization,content-type",
            },
        )
        assert pre.status_code == 200 and pre.headers["access-control-allow-origin"] == dash
        r = c.get("/runs", headers={"Origin": dash, "Authorization": "Bearer t"})
        assert r.status_code == 200 and r.headers["access-control-allow-origin"] == dash
        assert c.get("/runs", headers={"Origin": dash}).status_code == 401  # still needs the token
        assert c.get("/runs", headers={"Origin": EVIL, "Authorization": "Bearer t"}).status_code == 403
