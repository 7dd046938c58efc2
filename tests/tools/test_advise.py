"""make advise: the sizing arithmetic, and the command on a small sample."""
import pytest

from tests.conftest import invoke
from tools.advise import Measurement, predict_local, recommend
from tools.make_data import load_bundled, write_files

STEADY = Measurement(items=100, item_s=0.01, item_sd=0.0, call_s=0.0, startup_s=2.0, batch_wall_s=20e-6,
                     batch_cpu_s=50e-6, output_bytes_per_item=100)


def test_the_mini_batch_amortises_the_overhead_and_the_nodes_meet_the_target():
    plan = recommend(STEADY, total_items=1_000_000, cores=4, target_s=1800, max_nodes=10, timeout_s=60,
                     batch_overhead_s=1.0, node_startup_s=300)
    # 1 s overhead at most 5 % of a mini-batch: 2,000 items of 10 ms; 10,500 s of work per process over
    # 4 cores, in 1,800 - 300 - 2 s: 2 nodes, then 302 s + 10,500 / 8 s
    assert (plan.mini_batch_size, plan.processes_per_node, plan.nodes) == (2000, 4, 2)
    assert plan.predicted_minutes == pytest.approx((302 + 10_500 / 8) / 60) and plan.reachable


def test_the_timeout_and_the_spread_cap_the_mini_batch_and_an_unreachable_target_is_said():
    spread = Measurement(100, 0.5, 0.5, 0.0, 2.0, 20e-6, 50e-6, 10)
    plan = recommend(spread, total_items=100_000, cores=2, target_s=600, max_nodes=3, timeout_s=60)
    assert plan.mini_batch_size == 15  # 30 s under a slow item of 0.5 + 3 x 0.5 s
    assert plan.nodes == 3 and not plan.reachable


def test_the_local_prediction_shares_the_work_but_not_beyond_the_cores():
    assert predict_local(STEADY, 100, 1, 10, cores=2) == pytest.approx(2.0 + 1.0 + 10 * 20e-6)
    assert predict_local(STEADY, 100, 2, 10, cores=2) == pytest.approx(2.0 + (1.0 + 10 * 50e-6) / 2)
    assert predict_local(STEADY, 100, 4, 10, cores=2) == pytest.approx(2.0 + (1.0 + 10 * 50e-6) / 2)


def test_a_cost_per_call_of_run_is_paid_per_mini_batch_not_per_item():
    calls = Measurement(100, 0.01, 0.0, 0.005, 2.0, 20e-6, 50e-6, 100)
    assert predict_local(calls, 100, 1, 10, cores=2) == pytest.approx(2.0 + 1.0 + 10 * (0.005 + 20e-6))
    plan = recommend(calls, total_items=1_000_000, cores=4, target_s=1800, max_nodes=10, timeout_s=60,
                     batch_overhead_s=1.0, node_startup_s=300)
    assert plan.mini_batch_size == 2010  # (1 s + 5 ms) per mini-batch at most 5 % of 2,010 items of 10 ms


def test_the_command_measures_a_sample_and_prints_settings_and_its_check(tmp_path):
    write_files(load_bundled(), tmp_path / "sample", count=40)
    result = invoke("tools.advise", "--entry_script", "/dev/null", "--input", "sample", cwd=tmp_path)
    assert result.returncode == 2 and "expected an existing script" in result.stderr
    from orchestration.local_pipeline import ENTRY_SCRIPT

    result = invoke("tools.advise", "--entry_script", str(ENTRY_SCRIPT), "--input", "sample", "--items",
                    "2064000", "--vm-size", "STANDARD_D4S_V3", "--repeat", "1", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "measured on 40 sample items" in out and "PROCESS_COUNT_PER_NODE=4" in out
    assert "MINI_BATCH_SIZE=" in out and "NODE_COUNT=" in out and "recommended for 2064000 items" in out
    assert "1 worker: predicted" in out and "2 workers: predicted" in out
    assert out.strip().splitlines()[-1].startswith("exit 0: advice printed")
