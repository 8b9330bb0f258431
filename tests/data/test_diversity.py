import json
import subprocess
import sys

import numpy as np
import pytest

from speedbench.config import ConfigError
from speedbench.data.diversity import (
    HashedNgramEmbedder,
    cosine_matrix,
    farthest_point,
    get_embedder,
    mean_pairwise,
    select_diverse,
)
from speedbench.data.prompts import load_split


@pytest.fixture(scope="module")
def texts():
    return ["\n".join(p.turns) for p in load_split("qualitative-mini")]


def test_diverse_subset_beats_random_subsets(texts):
    emb = HashedNgramEmbedder().embed(texts)
    sel = select_diverse(emb, 11, seed=1)
    assert len(set(sel.indices)) == 11
    assert sel.objective < sel.random_mean
    sim = cosine_matrix(emb)
    assert sel.objective == pytest.approx(mean_pairwise(sim, sel.indices))
    assert sel.objective <= mean_pairwise(sim, farthest_point(sim, 11)) + 1e-12  # swaps never make it worse
    rng = np.random.default_rng(7)
    rand = [mean_pairwise(sim, rng.choice(len(texts), 11, replace=False)) for _ in range(200)]
    assert sel.objective < min(rand)


def test_swap_refinement_reaches_optimum_on_small_case():
    from itertools import combinations

    rng = np.random.default_rng(0)
    emb = rng.normal(size=(10, 5))
    sim = cosine_matrix(emb)
    best = min(mean_pairwise(sim, c) for c in combinations(range(10), 3))
    assert select_diverse(emb, 3).objective <= best + 0.05


def test_hashed_embedder_is_stable_across_processes(texts):
    here = HashedNgramEmbedder().embed(texts[:3])
    code = (
        "import json,sys; from speedbench.data.diversity import HashedNgramEmbedder as H; "
        "print(json.dumps(H().embed(json.loads(sys.argv[1])).tolist()))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, json.dumps(texts[:3])], capture_output=True, text=True, check=True
    ).stdout
    assert np.allclose(np.array(json.loads(out)), here)
    sim = cosine_matrix(here)
    assert np.allclose(np.diag(sim), 1.0)


def test_unknown_embedder():
    with pytest.raises(ConfigError, match="unknown embedder"):
        get_embedder("word2vec")


def test_strata_quotas_are_kept_and_the_constrained_optimum_is_reached():
    from itertools import combinations

    rng = np.random.default_rng(3)
    emb = rng.normal(size=(12, 6))
    strata = ["a"] * 4 + ["b"] * 8
    quota = {"a": 2, "b": 2}
    sel = select_diverse(emb, 4, strata=strata, quota=quota)
    assert sorted(strata[i] for i in sel.indices) == ["a", "a", "b", "b"]
    sim = cosine_matrix(emb)
    feasible = [c for c in combinations(range(12), 4) if sum(i < 4 for i in c) == 2]  # two from each stratum
    assert sel.objective <= min(mean_pairwise(sim, c) for c in feasible) + 0.05
    # without strata the same call is the plain selection
    assert select_diverse(emb, 4).indices == select_diverse(emb, 4, strata=None, quota=None).indices


@pytest.mark.parametrize(
    "strata,quota,msg",
    [
        (["a"] * 5, {"a": 3}, "summing to k"),
        (["a", "b", "b", "b", "b"], {"a": 2, "b": 2}, "fewer candidates than their quota"),
        (["a"] * 4, {"a": 4}, "one label per candidate"),
    ],
)
def test_strata_misuse_is_a_config_error(strata, quota, msg):
    emb = np.random.default_rng(0).normal(size=(5, 3))
    with pytest.raises(ConfigError, match=msg):
        select_diverse(emb, 4, strata=strata, quota=quota)
