"""REST service: start -> status -> report, auth, compare refusing different prompts, a real uvicorn process.

The attacks of issue 18 against a real uvicorn process are in test_rest_security.py."""

import json
import pathlib
import shutil
import time

import pytest
from fastapi.testclient import TestClient

from speedbench.api.policy import SubmitPolicy
from speedbench.api.rest import create_app

pytestmark = pytest.mark.slow
TOKEN = "s3cret-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def rest_body(config: dict) -> dict:
    """An attach config as a REST body: the service decides where results go."""
    return {k: v for k, v in config.items() if k != "output_dir"}


def app_for(out, *roots):
    return create_app(out, token=TOKEN, policy=SubmitPolicy(allow_roots=[pathlib.Path(r) for r in roots]))


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
    body = rest_body(attach_config(fake_sd_server.url, tiny_tokenizer, tmp_path))
    auth = AUTH
    with TestClient(app_for(out, tmp_path, tiny_tokenizer)) as client:
        assert client.get("/runs").status_code == 401
        assert client.get("/runs", headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert client.get("/docs").status_code == 401 and client.get("/docs", headers=auth).status_code == 200
        assert client.get("/health").json() == {"status": "ok"}
        doc = client.get("/openapi.json", headers=auth).json()
        assert "BenchmarkConfig" in json.dumps(doc["paths"]["/runs"]["post"])

        r = client.post("/runs", json=body, headers=auth)
        assert r.status_code == 202, r.text
        run = r.json()
        assert run["status"] in ("queued", "running") and run["points_planned"] == 2 and run["queue"] == "default"
        info = wait_done(client.get, run["id"], auth)
        assert info["status"] == "complete", info
        assert info["points_finished"] == 2 and info["current_point"] is None

        rep = client.get(f"/runs/{run['id']}/report", headers=auth).json()  # `speedbench report --format json`
        assert rep["kind"] == "report" and rep["runs"][0]["manifest"]["generation"]["output_len"] == 12
        assert [row["point_id"] for row in rep["points"]] == ["ngram-k3-c1", "ngram-k3-c2"]
        assert all(row["ok"] == row["sent"] > 0 for row in rep["points"])
        assert {c["category"] for c in rep["category_acceptance"]} >= {"Coding", "Math"}
        md = client.get(f"/runs/{run['id']}/report?format=md", headers=auth)
        assert md.headers["content-type"].startswith("text/markdown") and "## Throughput and latency" in md.text
        csv = client.get(f"/runs/{run['id']}/report?format=csv", headers=auth).text.splitlines()
        assert csv[0].startswith("point_id,") and len(csv) == 3

        listed = client.get("/runs", headers=auth).json()
        assert [x["id"] for x in listed] == [run["id"]]
        assert "config" not in listed[0]  # the list stays small; GET /runs/{id} has the config
        assert client.get(f"/runs/{run['id']}", headers=auth).json()["config"]["load"]["concurrency"] == [1, 2]

        bad = client.post("/runs", json={**body, "load": {"concurency": [1]}}, headers=auth)
        assert bad.status_code == 422 and "load.concurency: unknown key (from request body)" in bad.text
        assert client.get("/runs/..%2Fetc", headers=auth).status_code == 404
        assert client.get("/runs/nope/report", headers=auth).status_code == 404


def test_compare_side_by_side_and_refuses_other_prompts(tmp_path, tiny_tokenizer, fake_sd_server, attach_config):
    out = tmp_path / "results"
    body = rest_body(attach_config(fake_sd_server.url, tiny_tokenizer, tmp_path, concurrency=[1]))
    with TestClient(app_for(out, tmp_path, tiny_tokenizer), headers=AUTH) as client:
        a = client.post("/runs", json=body).json()["id"]
        b = client.post("/runs", json={**body, "name": "second"}).json()["id"]
        assert a != b
        for rid in (a, b):
            assert wait_done(client.get, rid)["status"] == "complete"
        cmp = client.get(f"/compare?ids={a},{b}")
        assert cmp.status_code == 200, cmp.text
        assert [row["run"] for row in cmp.json()["compare"]] == [a, b]
        md = client.get(f"/compare?ids={a},{b}&format=md").text
        assert "## Side by side (same prompt set)" in md and a in md and b in md

        # a copy of run b "measured on other prompts": a different fingerprint in its manifest
        other = out / "other-prompts"
        shutil.copytree(out / b, other)
        m = json.loads((other / "manifest.json").read_text())
        m["prompts"]["fingerprint"] = "0" * 64
        (other / "manifest.json").write_text(json.dumps(m))
        assert "other-prompts" in [x["id"] for x in client.get("/runs").json()]  # folders on disk are listed
        bad = client.get(f"/compare?ids={a},other-prompts")
        assert bad.status_code == 409
        assert "different prompt sets" in bad.json()["detail"]
