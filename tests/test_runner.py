"""runner.Spool: a rank that is not its node's leader keeps each finished measurement on disk until the gather."""

from bench import launch, runner
from tests.report.synthetic import matmul, samples


def test_a_spool_keeps_what_a_rank_finished_for_its_node_leader(tmp_path):
    a = runner.Spool(tmp_path, "job-1", "fp-a", 1)
    b = runner.Spool(tmp_path, "job-1", "fp-a", 2)
    elsewhere = runner.Spool(tmp_path, "job-1", "fp-b", 3)  # another node on a shared results folder
    other_job = runner.Spool(tmp_path, "job-2", "fp-a", 1)
    for spool, median in ((a, 0.01), (b, 0.02), (elsewhere, 0.03), (other_job, 0.04)):
        spool.add(matmul("float32", samples(median)))
    with open(b.path, "a") as fh:
        fh.write('{"workload": "matm')  # the rank died mid-line
    leader = runner.Spool(tmp_path, "job-1", "fp-a", 0)
    got = leader.recover()
    assert sorted(round(m.summary["median_s"], 2) for m in got) == [0.01, 0.02]
    a.remove()
    assert not a.path.exists() and [round(m.summary["median_s"], 2) for m in leader.recover()] == [0.02]


def test_job_ids_every_rank_derives_alike():
    p = launch.Placement(1, 4, 1, 2, "10.0.0.1", 29500, "env")
    assert launch.job_id(p, {"TORCHELASTIC_RUN_ID": "abc/def"}) == "abc_def"
    assert launch.job_id(p, {"SLURM_JOB_ID": "77", "SLURM_STEP_ID": "2"}) == "slurm-77-2"
    assert launch.job_id(p, {}) == "10.0.0.1-29500"


def test_a_straggler_is_the_rank_whose_own_device_fell_behind_the_jobs_median():
    from bench import plans

    ranks = [{"rank": 0, "hostname": "node0", "figures": {"float32": 1.0, "bfloat16": 3.0}},
             {"rank": 1, "hostname": "node1", "figures": {}},  # a rank that measured nothing (CPU, not a leader)
             {"rank": 2, "hostname": "node2", "figures": {"float32": 0.3}},
             {"rank": 3, "hostname": "node3", "figures": {"float32": 0.95}}]  # fmt: skip
    (slow,) = plans.stragglers(ranks)
    assert (slow["rank"], slow["hostname"], slow["precision"]) == (2, "node2", "float32")
    assert slow["job_median_tflops"] == 0.95 and round(slow["fraction_of_median"], 3) == round(0.3 / 0.95, 3)
    assert plans.stragglers(ranks[:2]) == []  # one measuring rank: nothing to compare
    m = matmul("float32", samples(0.01))
    assert plans.local_figures([m]) == {"float32": m.summary["tflops_median"]}
