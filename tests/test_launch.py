import pytest

from bench import launch


def test_single_process_without_launcher():
    p = launch.placement({})
    assert (p.rank, p.world_size, p.source, p.distributed) == (0, 1, "single", False)


def test_torchrun_variables():
    env = {"RANK": "3", "WORLD_SIZE": "8", "LOCAL_RANK": "1", "LOCAL_WORLD_SIZE": "2", "MASTER_ADDR": "10.0.0.1",
           "MASTER_PORT": "29400", "TORCHELASTIC_RUN_ID": "x"}  # fmt: skip
    p = launch.placement(env)
    assert (p.rank, p.world_size, p.local_rank, p.local_world_size, p.source) == (3, 8, 1, 2, "torchrun")
    assert (p.master_addr, p.master_port) == ("10.0.0.1", 29400)


def test_plain_variables_need_a_master():
    with pytest.raises(launch.LaunchError, match="MASTER_ADDR"):
        launch.placement({"RANK": "0", "WORLD_SIZE": "2"})
    p = launch.placement({"RANK": "1", "WORLD_SIZE": "2", "MASTER_ADDR": "h"})
    assert (p.source, p.local_rank, p.master_port) == ("env", 1, launch.DEFAULT_PORT)


def test_slurm_variables_when_torchrun_is_absent():
    env = {"SLURM_PROCID": "5", "SLURM_NTASKS": "8", "SLURM_LOCALID": "1", "SLURM_NTASKS_PER_NODE": "4",
           "SLURM_JOB_NODELIST": "gpu[03-04,09]", "SLURM_JOB_ID": "12345"}  # fmt: skip
    p = launch.placement(env)
    assert (p.rank, p.world_size, p.local_rank, p.local_world_size, p.source) == (5, 8, 1, 4, "slurm")
    assert (p.master_addr, p.master_port) == ("gpu03", launch.DEFAULT_PORT + 345)
    assert launch.placement({**env, "MASTER_ADDR": "head", "MASTER_PORT": "4000"}).master_addr == "head"


@pytest.mark.parametrize(
    "nodelist, first",
    [("node1", "node1"), ("a[1-3]", "a1"), ("gpu[07,09-10],cpu2", "gpu07"), ("x-y[001-004]", "x-y001")],
)
def test_first_host_of_a_nodelist(nodelist, first):
    assert launch.first_host(nodelist) == first


@pytest.mark.parametrize(
    "env, message",
    [({"RANK": "2", "WORLD_SIZE": "2", "MASTER_ADDR": "h"}, "outside world size"),
     ({"RANK": "x", "WORLD_SIZE": "2", "MASTER_ADDR": "h"}, "not an integer")],
)  # fmt: skip
def test_bad_placements(env, message):
    with pytest.raises(launch.LaunchError, match=message):
        launch.placement(env)
