"""``yolo-ls compare`` as a sweep: the product, the hard-target collapse, names, seeds, best.pt scoring, mean ± sd.

The unit tests build variants and report rows by hand (no training); one tiny real compare (two keys, two seeds)
checks the whole chain, and one runs the same settings on a local Ray and compares the numbers.
"""

from __future__ import annotations

import json
import math
import statistics

import pandas as pd
import pytest

from tests.helpers import NO_FIGURES, TINY_CLS, results
from yolo_ls.compare.report import aggregate, best_epoch, reading, variant_table, within_spread
from yolo_ls.compare.sweep import expand_variants, parse_seeds, split_values, variant_name
from yolo_ls.core.args import PluginArgumentError

ARGS = {k: v for k, v in TINY_CLS.items() if k != "seed"}


def _names(given, task="classify", epochs=3):
    return [v.name for v in expand_variants(given, task, epochs)]


def test_product_in_order_with_hard_targets_collapsed():
    variants = expand_variants({"label_smoothing": "0,0.1", "ls_mode": "uniform,margin"}, "classify", 3)
    assert [v.name for v in variants] == ["eps0", "eps0.1_mode-uniform", "eps0.1_mode-margin"]
    hard = variants[0]
    assert hard.hard and hard.eps == 0.0 and hard.plugin == {} and hard.values == {"label_smoothing": 0.0,
                                                                                    "ls_mode": None}
    assert set(hard.same_as) == {"eps0_mode-uniform", "eps0_mode-margin"}
    assert variants[2].plugin == {"ls_mode": "margin"} and not variants[2].hard
    # the CLI's tuple, a Python list and a comma string are the same sweep
    assert _names({"label_smoothing": (0, 0.1), "ls_mode": ["uniform", "margin"]}) == [v.name for v in variants]


def test_zero_eps_with_a_ramp_is_not_hard_and_auto_is_never_hard():
    names = _names({"label_smoothing": 0.0, "ls_schedule": "constant,linear,step", "ls_final": 0.1})
    assert names == ["eps0", "eps0_schedule-linear"]  # constant and step at ε=0 stay 0: one hard run
    variants = expand_variants({"label_smoothing": "0", "ls_schedule": "constant,auto"}, "classify", 3)
    assert [v.hard for v in variants] == [True, False]  # auto may raise ε from 0
    # a two_stage schedule that starts at 0.1 is not hard; its off epoch is part of the training
    assert len(_names({"label_smoothing": "0,0.1", "ls_schedule": "two_stage", "ls_off_epoch": 1})) == 2


def test_measurement_arguments_do_not_collapse_and_equal_resolutions_do():
    assert _names({"label_smoothing": "0,0.1", "calib_bins": "10,15"}) == [
        "eps0_calib_bins-10", "eps0_calib_bins-15", "eps0.1_calib_bins-10", "eps0.1_calib_bins-15"]
    assert _names({"label_smoothing": 0.1, "ls_mode": "auto,uniform"}) == ["eps0.1_mode-auto"]  # auto = uniform here
    assert _names({"label_smoothing": "0,0.0,0.1,0.1"}) == ["eps0", "eps0.1"]  # duplicates given twice


def test_names_unique_exact_and_filesystem_safe():
    assert variant_name(0.1000001) == "eps0.1000001" and variant_name(0.1) == "eps0.1"
    names = _names({"label_smoothing": "0.1,0.1000001", "ls_negative": "True,False", "ls_margin": "2.5"})
    assert len(set(names)) == len(names) == 4 and all(n.replace("_", "").replace("-", "").replace(".", "").isalnum()
                                                      for n in names), names
    assert names[0] == "eps0.1_negative-True"


def test_every_value_checked_before_anything_trains():
    with pytest.raises(PluginArgumentError, match="Did you mean 'margin'"):
        expand_variants({"label_smoothing": "0,0.1", "ls_mode": "uniform,margn"}, "classify", 3)
    with pytest.raises(PluginArgumentError, match="'label_smoothing=1.5'"):
        expand_variants({"label_smoothing": "0,1.5"}, "classify", 3)
    with pytest.raises(PluginArgumentError, match=r"ls_mode=margin.*\(variant eps0.1_schedule-auto\)"):
        expand_variants({"label_smoothing": "0.1", "ls_mode": "margin", "ls_schedule": "constant,auto"}, "classify", 3)
    with pytest.raises(PluginArgumentError, match="ls_off_epoch"):  # a schedule that cannot be built
        expand_variants({"label_smoothing": "0,0.1", "ls_schedule": "two_stage"}, "classify", 3)
    assert split_values("ls_prior", [0.5, 0.5]) == [[0.5, 0.5]]  # a class distribution is one value, not a list


def test_seeds_parse():
    assert parse_seeds("0,1,2") == [0, 1, 2] and parse_seeds((2, 0, 2)) == [2, 0] and parse_seeds(3) == [3]
    with pytest.raises(PluginArgumentError, match="'seeds=1.5'"):
        parse_seeds("0,1.5")


def test_compare_refuses_one_run_and_bad_own_arguments(tmp_path):
    from yolo_ls.compare.runner import compare

    kw = {"project": str(tmp_path / "p"), "epochs": 1}
    one = r"at least two variants or two seeds, got one: ε=0 \(hard\).*ε is 0 at every epoch"
    with pytest.raises(PluginArgumentError, match=one):
        compare("yolo11n-cls.yaml", "digits", 0.0, ls_mode="uniform,margin", **kw)
    with pytest.raises(PluginArgumentError, match="Did you mean 'ray'"):
        compare("yolo11n-cls.yaml", "digits", "0,0.1", backend="rey", **kw)
    with pytest.raises(PluginArgumentError, match="not both"):
        compare("yolo11n-cls.yaml", "digits", "0,0.1", seeds="0,1", seed=3, **kw)
    with pytest.raises(PluginArgumentError, match="cpu_per_variant"):
        compare("yolo11n-cls.yaml", "digits", "0,0.1", backend="ray", cpu_per_variant=0, **kw)
    assert not (tmp_path / "p").exists()


def _row(variant, seed, top1, ece, hard=False, eps=0.1):
    cols = {"top1": top1, "ece": ece, "mce": ece, "brier": 0.1, "nll": 0.5, "overconfidence": 0.0, "ece_ts": ece / 2,
            "nll_ts": 0.4, "top1_last": top1, "ece_last": ece}
    return {"variant": variant, "seed": seed, "label_smoothing": eps, "hard": hard, "best_epoch": 2, "epochs": 3,
            **cols}


def test_mean_sd_and_within_seed_spread_on_hand_made_rows():
    rows = [_row("eps0", 0, 0.80, 0.10, hard=True, eps=0.0), _row("eps0", 1, 0.84, 0.14, hard=True, eps=0.0),
            _row("eps0.1", 0, 0.81, 0.05), _row("eps0.1", 1, 0.83, 0.06),
            _row("eps0.2", 0, 0.70, 0.30), _row("eps0.2", 1, 0.70, 0.32)]
    variants = aggregate(rows, "classify")
    assert [v["variant"] for v in variants] == ["eps0", "eps0.1", "eps0.2"] and [v["n"] for v in variants] == [2] * 3
    mean, sd = variants[0]["stats"]["top1"]
    assert mean == pytest.approx(0.82) and sd == pytest.approx(statistics.stdev([0.80, 0.84]))
    assert within_spread(variants[0]["stats"]["top1"], variants[1]["stats"]["top1"])  # |0.82-0.82| <= 0.028
    assert not within_spread(variants[2]["stats"]["top1"], variants[0]["stats"]["top1"])
    assert not within_spread((0.8, None), (0.8, 0.1))  # one seed: no spread to speak of
    table = variant_table(variants, "classify", ["label_smoothing"])
    lines = table.splitlines()
    assert "0.8200 ± 0.0283" in lines[2] and "0.0550 ± 0.0071" in lines[3]
    assert "**0.0550 ± 0.0071**" in lines[3]  # best ECE in bold
    assert "≈ 0.1200 ± 0.0283" not in lines[2] and "| 0.1200 ± 0.0283 |" in lines[2]  # 0.12-0.055 > 0.028
    assert "**0.8200 ± 0.0283**" in lines[2] and "≈ 0.8200 ± 0.0141" in lines[3]  # equal top1 means: within spread
    assert "| 2/2 of 3 |" in lines[2]
    text = reading(variants, "classify")
    assert text.startswith("Scored on best.pt. The best calibrated variant is ε=0.1 (ece 0.0550)")
    assert "within the seed spread" in text  # its top1 cost against hard targets is not resolved by two seeds


def test_one_seed_shows_no_sd_and_says_so():
    variants = aggregate([_row("eps0", 0, 0.8, 0.1, True, 0.0), _row("eps0.1", 0, 0.79, 0.05)], "classify")
    table = variant_table(variants, "classify")
    assert "±" not in table and "≈" not in table
    assert "One seed per variant" in reading(variants, "classify")
    assert math.isnan(aggregate([{**_row("a", 0, 0.8, 0.1), "ece_ts": None}], "classify")[0]["ece_ts"])


def test_best_epoch_follows_ultralytics_fitness_without_a_checkpoint(tmp_path):
    run = tmp_path / "r"
    run.mkdir()
    pd.DataFrame({"epoch": [1, 2, 3, 4], "metrics/accuracy_top1": [0.5, 0.7, 0.7, 0.6],
                  "metrics/accuracy_top5": [0.9, 0.95, 0.95, 0.99]}).to_csv(run / "results.csv", index=False)
    assert best_epoch(run, "classify") == 2  # (top1+top5)/2: 0.825 at 2 and 3; Ultralytics keeps the first
    pd.DataFrame({"epoch": [1, 2], "metrics/mAP50-95(B)": [0.3, 0.2], "metrics/mAP50-95(M)": [0.1, 0.3]}).to_csv(
        run / "results.csv", index=False)
    assert best_epoch(run, "segment") == 2 and best_epoch(run, "detect") == 1


@pytest.mark.training
def test_tiny_sweep_two_keys_two_seeds_scored_on_best_pt(tmp_path, digits_root):
    """label_smoothing=0,0.1 × ls_mode=uniform,exclusive × seeds 0,1: three variants (ε=0 collapsed), six runs."""
    from yolo_ls.compare.runner import DONE, compare

    out = compare("yolo11n-cls.yaml", str(digits_root), "0,0.1", project=str(tmp_path), name="cmp",
                  ls_mode="uniform,exclusive", seeds="0,1", **{**ARGS, **NO_FIGURES, "epochs": 2, "fraction": 0.1})
    variants = ["eps0", "eps0.1_mode-uniform", "eps0.1_mode-exclusive"]
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == sorted(variants)
    report = pd.read_csv(out / "report.csv")
    assert report["variant"].tolist() == [v for v in variants for _ in (0, 1)] and report["seed"].tolist() == [0, 1] * 3
    assert {"label_smoothing", "ls_mode", "seed", "hard", "best_epoch", "top1", "ece", "ece_ts", "nll_ts",
            "top1_last", "ece_last"} <= set(report.columns)
    assert report["hard"].tolist() == [True, True, False, False, False, False]
    assert report["ls_mode"].isna().tolist()[:2] == [True, True] and report["ls_mode"].tolist()[2:] == [
        "uniform", "uniform", "exclusive", "exclusive"]
    for _, row in report.iterrows():
        run = out / row["run"]
        assert (run / DONE).exists() and row["run"] == f"{row['variant']}/seed{row['seed']}"
        args = json.loads((run / "compare_variant.json").read_text())
        assert args["seed"] == row["seed"] and args["label_smoothing"] == row["label_smoothing"]
        # best.pt's epoch is the first epoch of maximal fitness (top1 + top5) / 2, and the numbers its final val
        res = results(run)
        fitness = (res["metrics/accuracy_top1"] + res["metrics/accuracy_top5"]) / 2
        assert row["best_epoch"] == int(res["epoch"][fitness.idxmax()])
        final = json.loads((run / "calibration" / "final.json").read_text())
        assert row["ece"] == pytest.approx(final["metrics"]["ece"], rel=1e-5)
        assert row["nll_ts"] == pytest.approx(final["nll_ts"], rel=1e-5)
        assert row["top1"] == pytest.approx(final["val_metrics"]["metrics/accuracy_top1"], rel=1e-5)
    md = (out / "report.md").read_text()
    hard = report[report["variant"] == "eps0"]
    mean, sd = hard["ece"].mean(), hard["ece"].std()
    assert f"{mean:.4f} ± {sd:.4f}" in md and "mean ± sd over the seeds" in md
    assert "eps0_mode-uniform, eps0_mode-exclusive -> eps0" in md and "best.pt epoch" in md
    epochs = "/".join(str(e) for e in hard["best_epoch"])
    assert f"| eps0 | 0 | — | 2 | {epochs} of 2 |" in md, md


@pytest.mark.training
def test_ray_backend_gives_the_local_numbers(tmp_path, digits_root, capsys):
    """Two variants as Ray tasks on a local Ray: the same report.csv as the local backend, run for run.

    Ultralytics sets torch's thread count itself for CPU training (min(8, cpu_count - 1), in both backends), and with
    deterministic=True and one seed the two trainings are the same computation, so the numbers agree to 1e-6.
    """
    ray = pytest.importorskip("ray")
    from yolo_ls.compare.runner import compare

    kw = {**ARGS, **NO_FIGURES, "epochs": 1, "fraction": 0.1, "project": str(tmp_path)}
    local = compare("yolo11n-cls.yaml", str(digits_root), "0,0.1", name="local", **kw)
    remote = compare("yolo11n-cls.yaml", str(digits_root), "0,0.1", name="ray", backend="ray", cpu_per_variant=1, **kw)
    assert not ray.is_initialized()  # compare started its own Ray and shut it down
    said = capsys.readouterr().out
    assert said.count("as a Ray task") == 2 and said.count("(Ray)") == 2, said
    a, b = pd.read_csv(local / "report.csv"), pd.read_csv(remote / "report.csv")
    assert a["run"].tolist() == b["run"].tolist() == ["eps0/seed0", "eps0.1/seed0"]
    for col in ("top1", "ece", "mce", "brier", "nll", "ece_ts", "top1_last", "ece_last"):
        assert b[col].to_numpy() == pytest.approx(a[col].to_numpy(), rel=1e-6, abs=1e-9), col
    again = compare("yolo11n-cls.yaml", str(digits_root), "0,0.1", name="ray", backend="ray", **kw)
    assert again == remote and capsys.readouterr().out.count("reusing the finished variant") == 2


def test_compare_prints_one_line_per_epoch_and_skips_the_final_validation() -> None:
    import io
    from types import SimpleNamespace

    from yolo_ls.compare.runner import _epoch_progress

    out = io.StringIO()
    callback = _epoch_progress(out, "yolo-ls: [1/2] eps0 seed 0")
    trainer = SimpleNamespace(epoch=0, epochs=2, start_epoch=0)
    for epoch in (0, 1, 2):  # epoch == epochs: the final validation of best.pt runs the callback once more
        trainer.epoch = epoch
        callback(trainer)
    lines = out.getvalue().splitlines()
    assert [line.split(" (")[0] for line in lines] == ["yolo-ls: [1/2] eps0 seed 0: epoch 1/2",
                                                       "yolo-ls: [1/2] eps0 seed 0: epoch 2/2"]
    assert all(line.endswith(" s/epoch)") for line in lines)


@pytest.mark.parametrize(
    ("rows", "says", "never"),
    [
        # the case: hard targets have the lower mean ECE, but ε=0.1 lies within the seed spread
        ([_row("eps0", 0, 0.80, 0.0261 - 0.0255, True, 0.0), _row("eps0", 1, 0.80, 0.0261 + 0.0255, True, 0.0),
          _row("eps0.1", 0, 0.80, 0.0356 - 0.0097), _row("eps0.1", 1, 0.80, 0.0356 + 0.0097)],
         "is within the seed spread: these seeds do not separate them", "did not help"),
        # hard targets lower beyond the spread, two seeds each: a win may be called
        ([_row("eps0", 0, 0.80, 0.020, True, 0.0), _row("eps0", 1, 0.80, 0.022, True, 0.0),
          _row("eps0.1", 0, 0.80, 0.080), _row("eps0.1", 1, 0.80, 0.082)],
         "beyond the seed spread: smoothing did not help", "do not separate"),
        # one seed each: no spread, so no verdict beyond "lowest"
        ([_row("eps0", 0, 0.80, 0.020, True, 0.0), _row("eps0.1", 0, 0.80, 0.080)],
         "Hard targets (ε=0) have the lowest ece here", "did not help"),
    ],
)
def test_reading_calls_hard_targets_best_only_beyond_the_seed_spread(rows, says, never) -> None:
    text = reading(aggregate(rows, "classify"), "classify")
    assert says in text and never not in text, text


def test_console_table_fits_100_columns_and_keeps_the_headline_columns() -> None:
    from yolo_ls.compare.report import console_columns

    rows = [_row("eps0", s, 0.8 + s / 100, 0.1, True, 0.0) for s in (0, 1, 2)]
    rows += [_row("eps0.1", s, 0.81, 0.05 + s / 100) for s in (0, 1, 2)]
    table = variant_table(aggregate(rows, "classify"), "classify", ["label_smoothing"], console_columns("classify"))
    assert max(len(line) for line in table.splitlines()) <= 100, table
    assert table.splitlines()[0].split(" | ")[-3:] == ["top1", "ece", "ece_ts (held-out) |"]


def test_pooled_bins_weight_each_seed_by_its_counts(tmp_path) -> None:
    """reliability.png shows every seed: the bins of a variant's runs pooled, counts added, means count-weighted."""
    import json

    from yolo_ls.compare.report import pooled_bins

    a, b = tmp_path / "a.json", tmp_path / "b.json"
    edges = [0.0, 0.5, 1.0]
    a.write_text(json.dumps({"bins": {"edges": edges, "count": [2, 2], "confidence": [0.2, 0.8],
                                      "accuracy": [0.0, 1.0]}}))
    b.write_text(json.dumps({"bins": {"edges": edges, "count": [0, 6], "confidence": [None, 0.6],
                                      "accuracy": [None, 0.5]}}))
    out = pooled_bins([a, b, tmp_path / "missing.json"])
    assert out["count"] == [2, 8]
    assert out["confidence"] == pytest.approx([0.2, (2 * 0.8 + 6 * 0.6) / 8])
    assert out["accuracy"] == pytest.approx([0.0, (2 * 1.0 + 6 * 0.5) / 8])
    assert out["ece"] == pytest.approx((2 * 0.2 + 8 * abs(0.625 - 0.65)) / 10)
    assert pooled_bins([tmp_path / "missing.json"]) is None
