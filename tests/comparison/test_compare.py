import json

import jax
import numpy as np
import pytest

import odeflow
from odeflow.comparison import compare, markdown, method_names, summarize, write_report
from odeflow.problems import get_task
from processes import untimed_tuning


@pytest.fixture(scope="module")
def result():
    return compare("xor", ["adam", "kvaerno3", "scipy-lsoda"], seeds=2, target=5e-2,
                   max_steps=3000, repeats=1, scipy_time_cap=10.0)


def test_records_per_seed_and_method(result):
    assert len(result.records) == 3 * 2
    for r in result.records:
        assert r["status"] in ("target_reached", "horizon_reached", "max_steps_reached",
                               "failed", "time_cap")
        assert r["reached"] == (r["loss"] < 5e-2)
        assert r["presentations"] > 0
    kv = [r for r in result.records if r["method"] == "kvaerno3"]
    assert all(r["jacobians"] == r["steps"] for r in kv)
    assert result.tuning["adam"]["chosen"] in [g["value"] for g in result.tuning["adam"]["grid"]]


def test_identical_initial_parameters_across_methods(result):
    # every method starts from the same loss on a seed
    for seed in (0, 1):
        starts = {r["method"]: r["loss_history"][0] for r in result.records if r["seed"] == seed}
        assert len(set(np.round(list(starts.values()), 12))) == 1, starts


def test_report_files(result, tmp_path):
    paths = write_report(result, tmp_path)
    data = json.loads(paths["json"].read_text())
    assert data["machine"]["jax"] and data["config"]["task"] == "xor"
    assert len(data["summary"]) == 3
    assert "| kvaerno3 |" in markdown(result)
    assert paths["plot"].stat().st_size > 1000
    assert summarize(result)[0]["method"] == "adam"


def test_tuning_cost_is_the_grids_wall_time(result):
    rows = {s["method"]: s for s in summarize(result)}
    for method in ("adam", "kvaerno3"):
        row = rows[method]
        assert row["tuning_s"] == result.tuning[method]["wall_s"] > row["compile_s"] > 0
        assert row["time_with_tuning_s"] == pytest.approx(row["tuning_s"] + row["time_median_s"])
    assert rows["scipy-lsoda"]["tuning_s"] is None  # untuned by design
    assert rows["scipy-lsoda"]["time_with_tuning_s"] == rows["scipy-lsoda"]["time_median_s"]
    assert "tuning s" in markdown(result)


def test_untuned_protocol_calls_every_method_with_its_defaults():
    target = 5e-2
    res = compare("xor", ["adam", "gd", "lbfgs", "auto", "euler"], seeds=2, target=target,
                  max_steps=3000, repeats=1, tuning="none")
    assert res.config["tuning"] == "none" and res.config["grids"]["adam"] == []
    first = {r["method"]: r for r in res.records if r["seed"] == 0}
    assert first["adam"]["setting"] == 1e-3 and first["gd"]["setting"] == 0.01
    assert first["lbfgs"]["setting"] is None and first["auto"]["setting"] is None
    # fixed-step Euler has no default step: recorded as failed, with the reason
    assert first["euler"]["status"] == "failed" and "dt0" in first["euler"]["reason"]
    assert "at its defaults" in first["euler"]["reason"]
    # the same run as gradient_flow called by hand with nothing but the target
    task = get_task("xor")
    params = jax.tree.map(lambda x: x[0], task.init_batch([0]))
    by_hand = odeflow.gradient_flow(task.loss, params, target_loss=target, max_steps=3000, throw=False)
    assert first["auto"]["steps"] == int(by_hand.stats.num_steps)
    assert first["auto"]["loss"] == pytest.approx(float(by_hand.loss), rel=1e-12)
    assert all(s["tuning_s"] is None for s in summarize(res))
    assert "Untuned" in markdown(res) and "Tuning grids" not in markdown(res)


def test_tuning_choice_is_checked():
    with pytest.raises(ValueError, match="tuning must be one of"):
        compare("xor", ["adam"], seeds=1, tuning="random")
    with pytest.raises(ValueError, match="grids are used only"):
        compare("xor", ["adam"], seeds=1, tuning="none", grids={"adam": [0.1]})


def test_method_names():
    assert {"adam", "gd", "tsit5", "scipy-vode-bdf", "ptc-gn", "lm"} <= set(method_names())


def test_newton_type_methods_and_seed_by_seed_tuning():
    """Gauss-Newton, pseudo-transient and Levenberg-Marquardt methods run through
    compare; tuning seed by seed chooses what vmapped tuning chooses."""
    methods = ["auto", "ros2-gn", "ptc-gn", "lm"]
    kwargs = dict(seeds=2, target=5e-2, max_steps=2000, repeats=1)
    batched = compare("xor", methods, vmap_seeds=True, **kwargs)
    looped = compare("xor", methods, vmap_seeds=False, **kwargs)
    assert untimed_tuning(batched.tuning) == untimed_tuning(looped.tuning)
    assert looped.config["vmap_seeds"] is False
    for rec in looped.records:
        assert rec["reached"], rec
    lm = [r for r in looped.records if r["method"] == "lm"]
    assert all(r["gn_products"] > 0 and r["jacobians"] == 0 for r in lm)  # matrix-free
    gauss_newton = {"ros2-gn", "ptc-gn", "lm"}
    for r in looped.records:  # Gauss-Newton products in their own column, Hessian products in theirs
        assert (r["gn_products"] > 0) == (r["method"] in gauss_newton), r
        assert (r["hvps"] > 0) == (r["method"] == "auto"), r
