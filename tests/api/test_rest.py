"""REST service: start -> status -> report, auth, compare refusing different prompts, a real uvicorn process."""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time

import httpx
import pytest
from fastapi.testclient import TestClient

from speedbench.api.rest import create_app, serve_api
from speedbench.config import ConfigError

pytestmark = pytest.mark.slow
TOKEN = "s3cret-token"


def wait_done(get, run_id, headers=None, timeout_s=60):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        info = get(f"/runs/{run_id}", headers=headers).json()
        if info["status"] not in ("queued", "running"):
            return info
        time.sleep(0.2)
    raise AssertionError(f"run {run_id} did not finish in {timeout_s} s")


def test_start_status_report_with_token(tmp_path, tiny_tokenizer, fake_sd_server, attach_config):
    out = tmp_path / "results"
    body = attach_config(fake_sd_server.url, tiny_tokenizer, tmp_path)
    auth = {"Authorization": f"Bearer {TOKEN}"}
    with TestClient(create_app(out, token=TOKEN)) as client:
        assert client.get("/runs").status_code == 401
        assert client.get("/runs", headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert client.get("/docs").status_code == 200
        assert "BenchmarkConfig" in json.dumps(client.get("/openapi.json").json()["paths"]["/runs"]["post"])

        r = client.post("/runs", json=body, headers=auth)
        assert r.status_code == 202, r.text
        run = r.json()
        assert run["status"] in ("queued", "running") and run["points_planned"] == 2 and run["queue"] == "default"
        info = wait_done(client.get, run["id"], auth)
        assert info["status"] == "complete", info
        assert info["points_finished"] == 2 and info["current_point"] is None

        rep = client.get(f"/runs/{run['id']}/report", headers=auth).json()
        assert [row["point_id"] for row in rep["rows"]] == ["ngram-k3-c1", "ngram-k3-c2"]
        assert all(row["ok"] == row["sent"] > 0 for row in rep["rows"])
        assert {c["category"] for c in rep["categories"]["ngram-k3-c1"]} >= {"Coding", "Math"}
        md = client.get(f"/runs/{run['id']}/report?format=md", headers=auth)
        assert md.text.startswith("| engine |") and "ngram-k3" in md.text
        csv = client.get(f"/runs/{run['id']}/report?format=csv", headers=auth).text.splitlines()
        assert csv[0].startswith("point_id,") and len(csv) == 3

        listed = client.get("/runs", headers=auth).json()
        assert [x["id"] for x in listed] == [run["id"]]
        assert "config" not in listed[0]   # the list stays small; GET /runs/{id} has the config
        assert client.get(f"/runs/{run['id']}", headers=auth).json()["config"]["load"]["concurrency"] == [1, 2]

        bad = client.post("/runs", json={**body, "load": {"concurency": [1]}}, headers=auth)
        assert bad.status_code == 422 and "load.concurency: unknown key (from request body)" in bad.text
        assert client.get("/runs/..%2Fetc", headers=auth).status_code == 404
        assert client.get("/runs/nope/report", headers=auth).status_code == 404


def test_compare_side_by_side_and_refuses_other_prompts(tmp_path, tiny_tokenizer, fake_sd_server, attach_config):
    out = tmp_path / "results"
    body = attach_config(fake_sd_server.url, tiny_tokenizer, tmp_path, concurrency=[1])
    with TestClient(create_app(out)) as client:   # loopback without a token: allowed
        a = client.post("/runs", json=body).json()["id"]
        b = client.post("/runs", json={**body, "name": "second"}).json()["id"]
        assert a != b
        for rid in (a, b):
            assert wait_done(client.get, rid)["status"] == "complete"
        cmp = client.get(f"/compare?ids={a},{b}")
        assert cmp.status_code == 200, cmp.text
        assert [row["run"] for row in cmp.json()["rows"]] == [a, b]
        md = client.get(f"/compare?ids={a},{b}&format=md").text
        assert f"vllm@{a}" in md and f"vllm@{b}" in md

        # a copy of run b "measured on other prompts": a different fingerprint in its manifest
        other = out / "other-prompts"
        shutil.copytree(out / b, other)
        m = json.loads((other / "manifest.json").read_text())
        m["prompts"]["fingerprint"] = "0" * 64
        (other / "manifest.json").write_text(json.dumps(m))
        assert "other-prompts" in [x["id"] for x in client.get("/runs").json()]   # folders on disk are listed
        bad = client.get(f"/compare?ids={a},other-prompts")
        assert bad.status_code == 409
        assert "different prompt sets" in bad.json()["detail"]


def test_refuses_non_loopback_without_token():
    with pytest.raises(ConfigError, match="without a token"):
        serve_api(host="0.0.0.0", port=1, token=None)


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_real_uvicorn_process(tmp_path, tiny_tokenizer, fake_sd_server, attach_config):
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    out = tmp_path / "results"
    proc = subprocess.Popen([sys.executable, "-m", "speedbench.cli", "serve-api", "--port", str(port),
                             "--output-dir", str(out)], env={**os.environ, "SPEEDBENCH_API_TOKEN": TOKEN},
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{base}/docs", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, "serve-api did not come up"
            time.sleep(0.2)
        with httpx.Client(base_url=base, timeout=10) as c:
            assert c.post("/runs", json={}).status_code == 401          # token required: env-enabled
            auth = {"Authorization": f"Bearer {TOKEN}"}
            r = c.post("/runs", json=attach_config(fake_sd_server.url, tiny_tokenizer, tmp_path, concurrency=[1]),
                       headers=auth)
            assert r.status_code == 202, r.text
            info = wait_done(c.get, r.json()["id"], auth)
            assert info["status"] == "complete" and info["points_finished"] == 1
            rows = c.get(f"/runs/{info['id']}/report", headers=auth).json()["rows"]
            assert rows[0]["point_id"] == "ngram-k3-c1" and rows[0]["ok"] == rows[0]["sent"]
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)
