"""Both trainers under torchrun with 2 CPU processes (gloo): the replicas stay identical."""

import socket
import subprocess
import sys
from pathlib import Path

import torch


def _free_port() -> int:
    # A fixed port can be taken by another run on the same machine; let the OS choose one.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_process_ddp_keeps_replicas_identical(toy_data, tmp_path) -> None:
    worker = Path(__file__).with_name("ddp_worker.py")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
           f"--master_port={_free_port()}", str(worker), str(toy_data), str(tmp_path)]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False)
    # Both ranks write to the same stream; keep enough of it to see the first rank's own error.
    assert out.returncode == 0, f"stdout:\n{out.stdout[-2000:]}\nstderr:\n{out.stderr[-8000:]}"
    for name in ("encoder", "predictor"):
        a = torch.load(tmp_path / f"{name}_rank0.pt", weights_only=True)
        b = torch.load(tmp_path / f"{name}_rank1.pt", weights_only=True)
        assert a.keys() == b.keys()
        assert all(torch.equal(a[k], b[k]) for k in a), f"{name} replicas differ"
    assert (tmp_path / "encoder" / "metrics.jsonl").exists()  # only rank 0 logs
