"""A v2 pipeline job run locally: command -> parallel -> command, bindings resolved as Azure resolves them."""
import json
import signal
import subprocess
import sys
import time

import pytest

from tests.conftest import clean_env, invoke, run_module
from tests.orchestration.jobs.conftest import PIPELINE, write_pipeline
from tests.orchestration.prs.test_resume import alive


def run_job(tmp_path, job, *flags):
    """The job's command, run in this process (tests/conftest.py: invoke)."""
    return invoke("orchestration.jobs.cli", "--job", str(job), "--output", "out", *flags, cwd=tmp_path)


def test_a_pipeline_runs_its_nodes_in_dependency_order_with_every_binding_resolved(tmp_path, pipeline):
    # the whole command, as a user starts it: python -m orchestration.prs sends --job to the job runner
    result = run_module("orchestration.prs", "--job", str(pipeline), "--output", "out", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    closing = result.stdout.strip().splitlines()[-1]
    assert closing.startswith("exit 0: job demo ran: split (command, ")
    assert closing.index("split") < closing.index("score (parallel") < closing.index("report (command")
    out = tmp_path / "out"
    # split: a component file, a parent literal input, the optional --suffix dropped, a default output folder
    parts = sorted(p.name for p in (out / "split" / "parts").iterdir())
    assert parts == [f"part{n:02d}.txt" for n in range(5)]
    assert (out / "split" / "parts" / "part00.txt").read_text() == "hello one"
    # score: ${{default_datastore}} and ${{name}} in the pipeline output's datastore path
    rows = (out / "datastores" / "workspaceblobstore" / "scored" / "demo" / "rows.txt").read_text()
    assert rows.splitlines() == [f"part{n:02d}.txt hello {w} x3 yaml"
                                 for n, w in enumerate(["one", "two", "three", "four", "five"])]
    summary = json.loads((out / "score" / "logs" / "summary.json").read_text())
    config = summary["config"]
    assert (config["node_count"], config["process_count_per_node"], config["run_max_try"]) == (2, 1, 1)
    assert (config["allowed_failed_percent"], config["error_threshold"]) == (50, -1)
    assert config["mini_batch_size"] == 2
    assert config["arguments"] == ["--factor", "3"]  # the PRS arguments are the runner's, not the script's
    # report: a uri_file output with no path is OUTPUT/<node>/<output>
    assert (out / "report" / "summary").read_text() == "5 rows\n"
    not_applicable = "--task_overhead_timeout: the cloud service's own monitoring; not applicable locally"
    assert not_applicable in result.stderr
    assert "jobs.score.compute: ignored locally, it runs on this machine" in result.stderr


def test_a_failing_node_stops_the_job_and_names_it(tmp_path):
    job = write_pipeline(tmp_path / "job", PIPELINE.replace("python count.py", "python missing.py"))
    result = run_job(tmp_path, job)
    assert result.returncode == 42
    assert result.stdout.strip().splitlines()[-1].startswith(
        "exit 42: job demo failed at report (command) exit code 2")


@pytest.mark.parametrize("change, message", [
    (("path: ./raw", "path: azureml:raw-files:3"),
     "inputs.raw: azureml:raw-files:3 is a registered Azure ML asset"),
    (("path: ./raw", "path: https://example.org/raw.zip"), "is a web or storage URL"),
    (("component: ./components/split.yml", "component: azureml:split:1"),
     "jobs.split.component: azureml:split:1 is a registered component, which only Azure can resolve"),
    (("logging_level: INFO", "logging_level: verbose"),
     "jobs.score.logging_level (line 50): Value passed is not a data binding string: verbose; "
     "Value 'verbose' passed is not in set ['DEBUG', 'INFO', 'WARNING']"),
    (("${{parent.jobs.score.outputs.rows}}", "${{parent.jobs.nowhere.outputs.rows}}"),
     "Failed to find referenced source for input binding ${{parent.jobs.nowhere.outputs.rows}}"),
])
def test_what_cannot_run_locally_is_refused_with_its_reason_before_any_node_runs(tmp_path, change, message):
    job = write_pipeline(tmp_path / "job", PIPELINE.replace(*change))
    result = run_job(tmp_path, job)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert message in result.stderr, result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("exit 2: ")
    assert not (tmp_path / "out" / "split").exists()


def test_unknown_flags_and_inputs_are_errors_that_name_them(tmp_path, pipeline):
    flag = run_job(tmp_path, pipeline, "--mini-batch-size", "5")
    assert flag.returncode == 2
    assert flag.stderr.strip().splitlines()[-1] == \
        "exit 2: unrecognized arguments: --mini-batch-size 5 (see python -m orchestration.prs --help)"
    unknown = run_job(tmp_path, pipeline, "--set", "inputs.greting=hi")
    assert unknown.returncode == 2
    assert "--set inputs.greting: the job has no input 'greting' (it has: raw, greeting)" in unknown.stderr
    mixed = run_job(tmp_path, pipeline, "--mini_batch_size", "5")
    assert mixed.returncode == 2 and "--job: --mini_batch_size cannot be given with a job" in mixed.stderr


def test_a_set_input_overrides_the_yaml(tmp_path, pipeline):
    result = run_job(tmp_path, pipeline, "--set", "inputs.greeting=hi")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "out" / "split" / "parts" / "part00.txt").read_text() == "hi one"


def test_a_rerun_replaces_what_the_previous_run_wrote_and_nothing_foreign(tmp_path, pipeline):
    assert run_job(tmp_path, pipeline).returncode == 0
    rows = tmp_path / "out" / "datastores" / "workspaceblobstore" / "scored" / "demo" / "rows.txt"
    first = rows.read_text()
    (tmp_path / "out" / "split" / "parts" / "stale.txt").write_text("left by hand in an output")
    again = run_job(tmp_path, pipeline)
    assert again.returncode == 0, again.stderr
    assert rows.read_text() == first and not (tmp_path / "out" / "split" / "parts" / "stale.txt").exists()
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "notes.txt").write_text("mine")
    refused = invoke("orchestration.jobs.cli", "--job",
                     str(pipeline), "--output", "elsewhere", cwd=tmp_path)
    assert refused.returncode == 2
    assert "--output" in refused.stderr and "holds notes.txt, which no local job run wrote" in refused.stderr
    assert (tmp_path / "elsewhere" / "notes.txt").read_text() == "mine"


def test_an_output_bound_to_an_existing_folder_is_never_removed_by_a_rerun(tmp_path):
    (tmp_path / "existing").mkdir()
    (tmp_path / "existing" / "keep.txt").write_text("the user's")
    (tmp_path / "job.yml").write_text(
        "type: pipeline\njobs:\n  write:\n    type: command\n    command: echo hi > ${{outputs.o}}/new.txt\n"
        "    environment: azureml:AzureML-sklearn-1.0@latest\n"
        "    outputs:\n      o:\n        type: uri_folder\n        path: ./existing\n")
    for _ in range(2):
        result = invoke("orchestration.jobs.cli", "--job", "job.yml", "--output", "out", cwd=tmp_path)
        assert result.returncode == 0, result.stderr
    assert (tmp_path / "existing" / "keep.txt").read_text() == "the user's"
    assert (tmp_path / "existing" / "new.txt").read_text() == "hi\n"


def test_a_refused_rerun_keeps_the_previous_outputs(tmp_path, pipeline):
    assert run_job(tmp_path, pipeline).returncode == 0
    refused = run_job(tmp_path, pipeline, "--set", "inputs.greting=hi")
    assert refused.returncode == 2
    assert (tmp_path / "out" / "split" / "parts" / "part00.txt").read_text() == "hello one"


def test_a_command_that_exits_130_is_a_failed_node_not_a_stop(tmp_path):
    (tmp_path / "job.yml").write_text(
        "type: pipeline\njobs:\n  quits:\n    type: command\n    command: exit 130\n"
        "    environment: azureml:AzureML-sklearn-1.0@latest\n")
    result = invoke("orchestration.jobs.cli", "--job", "job.yml", "--output", "out", cwd=tmp_path)
    assert result.returncode == 42
    assert "failed at quits (command) exit code 130" in result.stdout


def test_a_component_default_is_used_and_set_needs_an_input_of_the_pipeline(tmp_path):
    (tmp_path / "components").mkdir()
    (tmp_path / "components" / "greet.yml").write_text(
        "type: command\nname: greeter\ninputs:\n  greeting:\n    type: string\n    default: hi\n"
        "outputs:\n  said:\n    type: uri_file\nenvironment: azureml:AzureML-sklearn-1.0@latest\n"
        "command: echo ${{inputs.greeting}} > ${{outputs.said}}\n")
    (tmp_path / "job.yml").write_text(
        "type: pipeline\njobs:\n  greet:\n    type: command\n    component: ./components/greet.yml\n")
    result = invoke("orchestration.jobs.cli", "--job", "job.yml", "--output", "out", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "out" / "greet" / "said").read_text() == "hi\n"
    # a pipeline's --set names the pipeline's inputs, not a node's: this one has none
    unknown = invoke("orchestration.jobs.cli", "--job", "job.yml", "--output", "out", "--set",
                     "inputs.greeting=hello", cwd=tmp_path)
    assert unknown.returncode == 2 and "the job has no input 'greeting' (it has: none)" in unknown.stderr


@pytest.mark.parametrize("stop, code", [(signal.SIGTERM, 143), (signal.SIGHUP, 129)])
def test_a_stopped_job_leaves_no_process_of_its_command_node_behind(tmp_path, stop, code):
    """SIGTERM to the runner alone, as `kill` or a supervisor sends it, or SIGHUP, as a closed terminal
    sends it: bash's own child is stopped too (it used to run on, orphaned, and write into the job's
    outputs after the runner had exited)."""
    (tmp_path / "job.yml").write_text(
        "type: pipeline\njobs:\n  waits:\n    type: command\n"
        f"    command: sleep 60 & echo $! > {tmp_path}/child.pid; wait; echo late > {tmp_path}/after.txt\n"
        "    environment: azureml:AzureML-sklearn-1.0@latest\n")
    command = [sys.executable, "-m", "orchestration.prs", "--job", "job.yml", "--output", "out"]
    process = subprocess.Popen(command, cwd=tmp_path, env=clean_env(), stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    pid_file = tmp_path / "child.pid"
    deadline = time.monotonic() + 30
    while not (pid_file.exists() and pid_file.read_text().strip()):
        assert time.monotonic() < deadline and process.poll() is None, "the command node never started"
        time.sleep(0.01)
    process.send_signal(stop)
    try:
        out, err = process.communicate(timeout=30)  # the child holds our pipes while it lives
    finally:
        process.kill()
    name = signal.Signals(stop).name
    assert process.returncode == code and err.strip().splitlines()[-1] == f"exit {code}: stopped by {name}"
    assert not alive(int(pid_file.read_text())) and not (tmp_path / "after.txt").exists()


def test_paths_with_spaces_quotes_and_dollars_reach_bash_and_the_entry_script_as_one_word(tmp_path):
    # Azure pastes ${{...}} unquoted; its paths have no space. Here a bound path is one word wherever it
    # lands: unquoted, inside "..." or '...', and in a parallel node's program arguments.
    job = write_pipeline(tmp_path / "it's my $job", PIPELINE.replace(
        "--factor ${{inputs.factor}}", "--factor ${{inputs.factor}} --data ${{inputs.data}}").replace(
        "python count.py ${{inputs.rows}} ${{outputs.summary}}",
        """python count.py "${{inputs.rows}}" '${{outputs.summary}}' && echo hi > ${{outputs.summary}}.x"""))
    result = invoke("orchestration.jobs.cli", "--job", str(job), "--output", "runs/my out", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    out = tmp_path / "runs" / "my out"
    assert len(list((out / "split" / "parts").iterdir())) == 5
    assert (out / "report" / "summary").read_text() == "5 rows\n"
    assert (out / "report" / "summary.x").read_text() == "hi\n"
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == ["my out"]  # nothing beside it
    config = json.loads((out / "score" / "logs" / "summary.json").read_text())["config"]
    assert config["arguments"] == ["--factor", "3", "--data", str(out / "split" / "parts")]


def command_job(tmp_path, name, nodes):
    """A pipeline of command nodes: {node: (command, outputs YAML or '')}."""
    text = "type: pipeline\njobs:\n"
    for node, (command, outputs) in nodes.items():
        text += (f"  {node}:\n    type: command\n    command: {command}\n"
                 "    environment: azureml:AzureML-sklearn-1.0@latest\n")
        text += f"    outputs:\n{outputs}" if outputs else ""
    (tmp_path / name).write_text(text)
    return name


def test_a_path_the_yaml_binds_is_written_never_deleted_by_a_later_run_of_any_job(tmp_path):
    bound = "      model:\n        type: uri_folder\n        path: ./final_model\n"
    job_a = command_job(tmp_path, "a.yml", {"train": ("echo w > ${{outputs.model}}/weights.txt", bound)})
    job_b = command_job(tmp_path, "b.yml", {"other": ("echo b", "")})
    for job in (job_a, job_a, job_b):
        result = invoke("orchestration.jobs.cli", "--job", job, "--output", "out", cwd=tmp_path)
        assert result.returncode == 0, result.stderr
    assert (tmp_path / "final_model" / "weights.txt").read_text() == "w\n"
    assert not (tmp_path / "out" / "train").exists()  # the run's own folder went, as documented


def test_a_record_that_names_a_path_outside_the_output_removes_nothing_there(tmp_path):
    (tmp_path / "precious").mkdir()
    job = command_job(tmp_path, "a.yml", {"one": ("echo one", "")})
    assert invoke("orchestration.jobs.cli", "--job", job, "--output", "out", cwd=tmp_path).returncode == 0
    data = tmp_path / "out" / "datastores" / "workspaceblobstore" / "precious.csv"
    data.parent.mkdir(parents=True)
    data.write_text("the user's")
    (tmp_path / "out" / ".written-by-local-job.json").write_text(json.dumps(
        {"created": [str(tmp_path / "precious"), "../precious", "one", "datastores"], "written": []}))
    again = invoke("orchestration.jobs.cli", "--job", job, "--output", "out", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert (tmp_path / "precious").is_dir() and "which no run creates inside" in again.stderr
    assert data.read_text() == "the user's"
    (tmp_path / "out" / ".python").rename(tmp_path / "mytools")
    (tmp_path / "out" / ".python").symlink_to(tmp_path / "mytools")
    linked = invoke("orchestration.jobs.cli", "--job", job, "--output", "out", cwd=tmp_path)
    assert linked.returncode == 2 and ".python is a link or a file" in linked.stderr


@pytest.mark.parametrize("kind", ["pipeline", "parallel"])
def test_a_node_named_like_the_runners_own_folder_is_refused_and_the_users_data_kept(tmp_path, kind):
    mine = tmp_path / "out" / "datastores" / "workspaceblobstore" / "mine.txt"
    mine.parent.mkdir(parents=True)
    mine.write_text("the user's")
    (tmp_path / "job.yml").write_text(
        "type: pipeline\njobs:\n  datastores:\n    type: command\n    command: echo hi\n"
        "    environment: azureml:AzureML-sklearn-1.0@latest\n" if kind == "pipeline" else
        "type: parallel\nname: datastores\ninputs:\n  data:\n    type: uri_folder\n"
        "input_data: ${{inputs.data}}\ntask:\n  type: run_function\n  code: .\n  entry_script: e.py\n"
        "  environment: azureml:AzureML-sklearn-1.0@latest\n")
    for _ in range(2):
        result = invoke("orchestration.jobs.cli", "--job", "job.yml", "--output", "out", cwd=tmp_path)
        assert result.returncode == 2 and "Traceback" not in result.stderr
        assert "jobs.datastores: OUTPUT/datastores is the local runner's own" in result.stderr
    assert mine.read_text() == "the user's"


def test_two_nodes_bound_to_one_pipeline_output_are_refused_before_either_runs(tmp_path):
    (tmp_path / "job.yml").write_text(
        "type: pipeline\noutputs:\n  shared:\n    type: uri_folder\njobs:\n"
        + "".join(f"  {n}:\n    type: command\n    command: touch ${{{{outputs.o}}}}/{n} {tmp_path}/ran_{n}\n"
                  "    environment: azureml:AzureML-sklearn-1.0@latest\n"
                  "    outputs:\n      o: ${{parent.outputs.shared}}\n" for n in ("first", "second")))
    result = invoke("orchestration.jobs.cli", "--job", "job.yml", "--output", "out", cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert "jobs.second.outputs.o and jobs.first.outputs.o are both bound to ${{parent.outputs.shared}}" \
        in result.stderr
    assert not list(tmp_path.glob("ran_*"))


def test_a_bound_file_that_was_there_before_any_run_is_never_replaced(tmp_path, pipeline):
    rows = tmp_path / "out" / "datastores" / "workspaceblobstore" / "scored" / "demo" / "rows.txt"
    rows.parent.mkdir(parents=True)
    rows.write_text("the user's rows")
    for _ in range(2):
        result = run_job(tmp_path, pipeline)
        assert result.returncode == 2, result.stdout + result.stderr
        assert "which no run of this runner wrote" in result.stderr
    assert rows.read_text() == "the user's rows"


def test_a_one_file_code_and_a_path_variable_run_as_in_azure(tmp_path):
    (tmp_path / "train.py").write_text("import os; print('trained with', os.environ['N'])\n")
    (tmp_path / "job.yml").write_text(
        "type: pipeline\njobs:\n  train:\n    type: command\n    code: ./train.py\n"
        "    command: python train.py; echo PATH=$PATH\n"
        "    environment: azureml:AzureML-sklearn-1.0@latest\n"
        "    environment_variables:\n      PATH: /usr/bin:/bin\n      N: 5\n")
    result = invoke("orchestration.jobs.cli", "--job", "job.yml", "--output", "out", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "trained with 5" in result.stdout
    assert f"PATH={tmp_path / 'out' / '.python'}:/usr/bin:/bin" in result.stdout


def test_a_yaml_alias_bomb_is_refused_before_azure_ai_ml_expands_it(tmp_path):
    lines = ["type: pipeline", "a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 10)]
    lines += ["tags:", "  bomb: *a9", "jobs:", "  t:", "    type: command", "    command: echo",
              "    environment: azureml:AzureML-sklearn-1.0@latest"]
    (tmp_path / "job.yml").write_text("\n".join(lines) + "\n")
    result = invoke("orchestration.jobs.cli", "--job", "job.yml", "--output", "out", cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "its aliases (*name) expand to more than 100,000 values" in result.stderr


def test_an_empty_validation_message_still_gives_one_line():
    from orchestration.jobs.loading import schema_errors

    assert schema_errors("") == ["  (azure-ai-ml gave no message)"]


def test_a_misspelt_key_or_prs_argument_is_named_with_the_closest_valid_one(tmp_path):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.txt").write_text("x")
    (tmp_path / "score.py").write_text("def run(mini_batch):\n    return list(mini_batch)\n")
    (tmp_path / "component.yml").write_text(
        "type: parallel\nname: scorer\ninputs:\n  data:\n    type: uri_folder\ninput_data: ${{inputs.data}}\n"
        "mini_batch_sise: '3'\ntask:\n  type: run_function\n  code: .\n  entry_script: score.py\n"
        "  environment: azureml:AzureML-sklearn-1.0@latest\n"
        "  program_arguments: --resource_monitor_interva 5\n")
    result = invoke("orchestration.jobs.cli", "--job", "component.yml", "--output", "out", "--set",
                    "inputs.data=in", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "mini_batch_sise: not a key of a parallel node (did you mean mini_batch_size?)" in result.stderr
    assert ("jobs.scorer.task.program_arguments --resource_monitor_interva: not a ParallelRunStep "
            "argument, so it is passed to the entry script (did you mean --resource_monitor_interval?)") \
        in result.stderr


def test_a_misspelt_key_that_azure_ai_ml_refuses_is_named_beside_its_message(tmp_path, pipeline):
    pipeline.write_text(pipeline.read_text().replace('mini_batch_size: "2"', 'mini_batch_sise: "2"'))
    result = run_job(tmp_path, pipeline)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert ("perhaps: jobs.score.mini_batch_sise: not a key of a parallel node (did you mean "
            "mini_batch_size?)") in result.stderr


def test_a_rerun_rewrites_the_rows_a_parallel_node_wrote_into_a_folder_the_yaml_binds(tmp_path, pipeline):
    pipeline.write_text(pipeline.read_text().replace(
        "    type: uri_file\n    path: azureml://datastores/${{default_datastore}}/paths/scored/"
        "${{name}}/rows.txt",
        "    type: uri_folder\n    path: ./results").replace(
        "count.py ${{inputs.rows}}", "count.py ${{inputs.rows}}/parallel_run_step.txt"))
    for _ in range(2):
        result = run_job(tmp_path, pipeline)
        assert result.returncode == 0, result.stderr
    rows = (pipeline.parent / "results" / "parallel_run_step.txt").read_text().splitlines()
    assert len(rows) == 5


@pytest.mark.parametrize("path", ["azureml://datastores/workspaceblobstore/paths/../../../escaped",
                                  "azureml://datastores/../paths/escaped"])
def test_a_datastore_path_that_climbs_out_of_its_datastore_is_refused(tmp_path, path):
    (tmp_path / "job.yml").write_text(
        "type: pipeline\noutputs:\n  o:\n    type: uri_folder\n    path: " + path + "\njobs:\n"
        "  w:\n    type: command\n    command: touch ${{outputs.o}}/x.txt\n"
        "    environment: azureml:AzureML-sklearn-1.0@latest\n"
        "    outputs:\n      o: ${{parent.outputs.o}}\n")
    result = invoke("orchestration.jobs.cli", "--job", "job.yml", "--output", "deep/out", cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "outputs.o: " + path in result.stderr
    assert not list(tmp_path.rglob("x.txt")) and not (tmp_path / "escaped").exists()


def test_program_arguments_keep_a_path_whole_after_a_hash_and_refuse_an_unclosed_quote(tmp_path, pipeline):
    folder = tmp_path / "it's #1 job"
    job = write_pipeline(folder, PIPELINE.replace(
        "--factor ${{inputs.factor}}", "--tag #1 --factor ${{inputs.factor}} --data=${{inputs.data}}"))
    result = invoke("orchestration.jobs.cli", "--job", str(job), "--output", "o u t", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    config = json.loads((tmp_path / "o u t" / "score" / "logs" / "summary.json").read_text())["config"]
    assert config["arguments"] == ["--tag", "#1", "--factor", "3",
                                   f"--data={tmp_path / 'o u t' / 'split' / 'parts'}"]
    job.write_text(job.read_text().replace("--tag #1", "--label \"it's"))
    broken = invoke("orchestration.jobs.cli", "--job", str(job), "--output", "o u t", cwd=tmp_path)
    assert broken.returncode == 2 and "Traceback" not in broken.stderr
    assert "jobs.score.task.program_arguments: No closing quotation" in broken.stderr


@pytest.mark.parametrize("change, message", [
    (("instance_count: 2", "instance_count: 0"),
     "jobs.score.resources.instance_count: expected at least 1 (got 0)"),
    (("max_concurrency_per_instance: 1", "max_concurrency_per_instance: 0"),
     "jobs.score.max_concurrency_per_instance: expected at least 1 (got 0)"),
    (("error_threshold: -1", "error_threshold: -7"),
     "jobs.score.error_threshold: expected at least -1 (got -7)"),
    (("      rows: ${{parent.outputs.scored}}", "      logs: ${{parent.outputs.scored}}"),
     "jobs.score.outputs.logs: OUTPUT/score/logs is the local runner's own"),
])
def test_a_parallel_node_setting_azure_would_refuse_is_named_before_any_node_runs(tmp_path, change, message):
    job = write_pipeline(tmp_path / "job", PIPELINE.replace(*change))
    result = run_job(tmp_path, job)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert message in result.stderr
    assert not list((tmp_path / "out" / "split" / "parts").glob("*"))  # split, the first node, never ran


def test_an_output_folder_that_is_a_file_and_an_empty_pipeline_are_named(tmp_path, pipeline):
    (tmp_path / "afile").write_text("x")
    result = invoke("orchestration.jobs.cli", "--job", str(pipeline), "--output", "afile", cwd=tmp_path)
    assert result.returncode == 2 and "--output afile: a file is in the way" in result.stderr
    (pipeline.parent / "raw.txt").write_text("x")
    bound = run_job(tmp_path, write_pipeline(tmp_path / "job2", PIPELINE.replace(
        "    path: azureml://datastores/${{default_datastore}}/paths/scored/${{name}}/rows.txt",
        "    path: ./raw/a.txt").replace("type: uri_file\n    path: ./raw/a.txt",
                                         "type: uri_folder\n    path: ./raw/a.txt")))
    assert bound.returncode == 2 and "Traceback" not in bound.stderr
    assert "is a file (or lies below one); a uri_folder output needs a folder there" in bound.stderr
    (tmp_path / "empty.yml").write_text("type: pipeline\njobs: {}\n")
    empty = invoke("orchestration.jobs.cli", "--job", "empty.yml", "--output", "out", cwd=tmp_path)
    assert empty.returncode == 2 and "jobs: a pipeline job needs at least one node" in empty.stderr


def test_a_command_runs_in_a_snapshot_of_its_code_and_never_writes_into_the_source_tree(tmp_path):
    source = tmp_path / "src"
    source.mkdir()
    (source / "train.py").write_text(
        "import os, pathlib\nos.makedirs('outputs', exist_ok=True)\n"
        "pathlib.Path('outputs/model.pkl').write_text('m')\npathlib.Path('train.log').write_text('log')\n"
        "print('secret visible:', os.path.exists('secret.txt'))\n")
    (source / "secret.txt").write_text("not uploaded")
    (source / ".amlignore").write_text("secret.txt\n")
    (tmp_path / "job.yml").write_text(
        "type: pipeline\njobs:\n  train:\n    type: command\n    code: ./src\n    command: python train.py\n"
        "    environment: azureml:AzureML-sklearn-1.0@latest\n")
    result = invoke("orchestration.jobs.cli", "--job", "job.yml", "--output", "out", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "secret visible: False" in result.stdout  # .amlignore applies, as to Azure's upload
    assert sorted(p.name for p in source.iterdir()) == [".amlignore", "secret.txt", "train.py"]
    assert (tmp_path / "out" / "train" / ".code" / "outputs" / "model.pkl").read_text() == "m"


def test_a_path_that_cannot_be_quoted_where_it_lands_is_refused_before_any_node_runs(tmp_path):
    (tmp_path / "My").mkdir()
    (tmp_path / "My" / "keep.txt").write_text("precious")
    (tmp_path / "job.yml").write_text(
        "type: pipeline\njobs:\n  first:\n    type: command\n    command: touch " + str(tmp_path / "ran") +
        "\n    environment: azureml:AzureML-sklearn-1.0@latest\n"
        "  clean:\n    type: command\n    outputs: {o: {type: uri_folder}}\n"
        "    environment: azureml:AzureML-sklearn-1.0@latest\n"
        "    command: |\n      tr a-z A-Z <<< x >/dev/null\n      rm -rf ${{outputs.o}}/*\n")
    result = invoke("orchestration.jobs.cli", "--job", "job.yml", "--output", "My Data", cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "jobs.clean.command: the path" in result.stderr and "needs quoting" in result.stderr
    assert (tmp_path / "My" / "keep.txt").read_text() == "precious" and not (tmp_path / "ran").exists()


def test_links_in_the_code_are_copied_as_their_contents_and_an_output_inside_the_code_is_left_out(tmp_path):
    shared = tmp_path / "shared"
    (shared / "cache").mkdir(parents=True)
    (shared / "config.json").write_text("{}")
    (shared / "cache" / "keep.bin").write_text("keep")
    (tmp_path / "config.json").symlink_to(shared / "config.json")
    (tmp_path / "cache").symlink_to(shared / "cache")
    (tmp_path / "loop").symlink_to(tmp_path)  # a link back to the code folder itself
    (tmp_path / "job.yml").write_text(
        "type: pipeline\njobs:\n  a:\n    type: command\n    code: .\n"
        "    command: echo overwritten > config.json && rm -rf cache/* && ls cache >/dev/null\n"
        "    environment: azureml:AzureML-sklearn-1.0@latest\n")
    for _ in range(2):  # the second run's code folder holds the first run's output
        result = invoke("orchestration.jobs.cli", "--job", "job.yml", "--output", "out", cwd=tmp_path)
        assert result.returncode == 0, result.stderr
    assert (shared / "config.json").read_text() == "{}" and (shared / "cache" / "keep.bin").exists()
    assert not (tmp_path / "out" / "a" / ".code" / "out").exists()
