"""The benchmark harness: result validation, median/spread, the table, failing modules.

Only the harness logic is tested, with tiny fake benchmark modules; no timings are asserted.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from benchmarks.harness import common, run_all  # noqa: E402

# The harness puts the repository root on a module's PYTHONPATH, so this import resolves.
GOOD_MODULE = '''
from benchmarks.harness.common import bench_main, make_result

def run(size=10):
    return [make_result("fake_fast", [2.0 * size, 3.0 * size], [1.0 * size, 1.0 * size],
                        target=1.5, better="higher", unit="items/s", inputs={"size": size})]

if __name__ == "__main__":
    bench_main(run, {"size": 1})
'''

FAILING_MODULE = '''
import sys
sys.stderr.write("something broke: out of cheese\\n")
sys.exit(3)
'''

MALFORMED_MODULE = '''
import json, sys
json.dump([{"name": "fake_bad", "ratio": 1.0}], open(sys.argv[sys.argv.index("--json") + 1], "w"))
'''


def _module(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / "benchmarks" / f"{name}.py"
    path.parent.mkdir(exist_ok=True)
    path.write_text(text)
    return path


def _result(**overrides) -> dict:
    result = common.make_result("x", [2.0, 4.0, 3.0], [1.0, 2.0, 1.0], target=1.5,
                                better="higher", unit="u", inputs={"k": 1})
    result.update(overrides)
    return result


def test_median_spread():
    assert common.median_spread([1.0, 2.0, 4.0]) == (2.0, 1.5)
    assert common.median_spread([3.0]) == (3.0, 0.0)
    with pytest.raises(ValueError):
        common.median_spread([])


def test_make_result_pairs_repetitions():
    result = _result()
    assert result["ratio"] == 2.0  # per-repetition ratios 2, 2, 3
    assert result["spread"] == pytest.approx(0.5)
    assert result["value"] == 3.0 and result["baseline"] == 1.0
    assert result["repetitions"] == 3
    assert set(common.REQUIRED_KEYS) <= set(result)
    explicit = common.make_result("y", [1.0, 1.0], [2.0, 4.0], 2.0, "higher", "s", {},
                                  ratios=[2.0, 4.0])
    assert explicit["ratio"] == 3.0


@pytest.mark.parametrize(
    "overrides",
    [{"better": "more"}, {"ratio": "fast"}, {"repetitions": 0}, {"inputs": []}, {"spread": None}],
)
def test_validate_result_rejects(overrides):
    with pytest.raises(ValueError):
        common.validate_result(_result(**overrides))


def test_validate_result_missing_key():
    result = _result()
    del result["baseline"]
    with pytest.raises(ValueError, match="baseline"):
        common.validate_result(result)


def test_target_met_both_directions():
    assert common.target_met(_result(ratio=2.0, target=1.5, better="higher"))
    assert not common.target_met(_result(ratio=1.2, target=1.5, better="higher"))
    assert common.target_met(_result(ratio=1.05, target=1.1, better="lower"))
    assert not common.target_met(_result(ratio=1.2, target=1.1, better="lower"))


def test_markdown_table():
    rows = [
        _result(name="fast", ratio=2.0, target=1.5, better="higher", value=2500.0),
        _result(name="small", ratio=0.3, target=0.2, better="lower"),
        {"name": "broken", "status": "error", "reason": "exit status 3"},
    ]
    table = run_all.markdown_table(rows).splitlines()
    assert table[0].startswith("| name | ratio | target | met? |")
    assert len(table) == 5
    assert "| fast | 2.000 | >= 1.5 | yes | 2,500 |" in table[2]
    assert "| small | 0.300 | <= 0.2 | no |" in table[3]
    assert table[4].startswith("| broken | error |")


def test_module_names_come_from_folders():
    bench = run_all.Benchmark(run_all.BENCH_DIR / "grid_speedup" / "bench.py")
    assert bench.module == "grid_speedup"
    assert run_all.Benchmark(Path("elsewhere/single_file.py")).module == "single_file"
    for registered in run_all.BENCHMARKS:  # every registered module is where it says
        assert registered.path.exists(), registered.path


def test_select_by_result_or_module_name():
    chosen = run_all.select(run_all.BENCHMARKS, "ingest_scaling,reader_throughput")
    assert [b.module for b in chosen] == ["ingest_throughput", "reader_throughput"]
    assert len(run_all.select(run_all.BENCHMARKS, None)) == len(run_all.BENCHMARKS)
    with pytest.raises(ValueError, match="unknown"):
        run_all.select(run_all.BENCHMARKS, "nope")


def test_harness_collects_and_reports_errors(tmp_path):
    benches = [
        run_all.Benchmark(_module(tmp_path, "good", GOOD_MODULE), ("fake_fast",)),
        run_all.Benchmark(_module(tmp_path, "failing", FAILING_MODULE), ("fake_a", "fake_b")),
        run_all.Benchmark(_module(tmp_path, "malformed", MALFORMED_MODULE), ("fake_bad",)),
        run_all.Benchmark(tmp_path / "benchmarks" / "absent.py", ("fake_absent",),
                          optional=True),
    ]
    out = tmp_path / "out"
    assert run_all.run_all(benches, quick=True, out_dir=out) == 0
    report = json.loads((out / "results.json").read_text())
    assert {"cpu", "cores", "memory_gib", "python", "date"} <= set(report["machine"])
    by_name = {r["name"]: r for r in report["results"]}
    assert set(by_name) == {"fake_fast", "fake_a", "fake_b", "fake_bad"}
    good = by_name["fake_fast"]
    assert good["status"] == "ok" and good["met"] is True
    assert good["inputs"]["size"] == 1  # --quick reached the module
    for name in ("fake_a", "fake_b"):
        assert by_name[name]["status"] == "error"
        assert "out of cheese" in by_name[name]["stderr_tail"]
        assert by_name[name]["returncode"] == 3
    assert by_name["fake_bad"]["status"] == "error"
    assert "malformed" in by_name["fake_bad"]["reason"]
    statuses = {m["module"]: m["status"] for m in report["modules"]}
    assert statuses == {"good": "ok", "failing": "error", "malformed": "error",
                        "absent": "skipped (not written yet)"}
    assert "| fake_fast |" in (out / "results.md").read_text()


def test_harness_fails_only_when_all_fail(tmp_path):
    benches = [run_all.Benchmark(_module(tmp_path, "failing", FAILING_MODULE), ("fake_a",))]
    assert run_all.run_all(benches, quick=False, out_dir=tmp_path / "out") == 1


def test_bench_main_writes_json(tmp_path, monkeypatch):
    monkeypatch.delenv(common.QUICK_ENV, raising=False)
    out = tmp_path / "r.json"

    def run(size: int = 5) -> dict:
        return _result(inputs={"size": size})

    common.bench_main(run, {"size": 1}, ["--json", str(out)])
    assert json.loads(out.read_text())[0]["inputs"]["size"] == 5
    common.bench_main(run, {"size": 1}, ["--json", str(out), "--quick"])
    assert json.loads(out.read_text())[0]["inputs"]["size"] == 1


def test_partial_run_keeps_the_other_modules_results(tmp_path):
    good = run_all.Benchmark(_module(tmp_path, "good", GOOD_MODULE), ("fake_fast",))
    failing = run_all.Benchmark(_module(tmp_path, "failing", FAILING_MODULE), ("fake_a",))
    out = tmp_path / "out"
    assert run_all.run_all([good, failing], quick=False, out_dir=out) == 0
    first = json.loads((out / "results.json").read_text())
    # Rerun only the failing module: the good module's result and record survive.
    assert run_all.run_all([failing], quick=False, out_dir=out, merge=True) == 1
    report = json.loads((out / "results.json").read_text())
    assert {r["name"] for r in report["results"]} == {"fake_fast", "fake_a"}
    kept = next(m for m in report["modules"] if m["module"] == "good")
    assert kept == next(m for m in first["modules"] if m["module"] == "good")
    assert "| fake_fast |" in (out / "results.md").read_text()
    # Without merge the file holds only what ran.
    run_all.run_all([failing], quick=False, out_dir=out)
    assert {r["name"] for r in json.loads((out / "results.json").read_text())["results"]} == {
        "fake_a"}


def test_bench_gpu_without_a_gpu_says_so_and_succeeds():
    import subprocess
    import sys

    from benchmarks.gpu.bench import visible_gpus

    if visible_gpus():
        pytest.skip("a GPU is visible: make bench-gpu would measure")
    proc = subprocess.run([sys.executable, "-m", "benchmarks.gpu.bench"], capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == ("bench-gpu: TensorFlow sees no GPU on this machine; "
                                   "nothing measured")
