"""Starting worker processes: fork when alone, else a forkserver; every eval forks again."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

import tensorlake as tl
from tests.compute.transforms import make_rows


@pytest.mark.parametrize(
    "setting,forked",
    [("alone", True), ("thread running", False), ("forkserver forced", False)],
)
def test_closures_from_main_run_in_worker_processes(tmp_path, setting, forked):
    """Workers are forked from a process where nothing else runs, else they come from a
    forkserver; closures and globals of ``__main__`` work either way."""
    script = textwrap.dedent(
        """
        import json
        import os
        import sys
        import threading
        import tensorlake as tl

        OFFSET = 1000

        def main(path, setting):
            factor = 3  # captured by the closure below
            parent = os.getpid()

            @tl.compute
            def scaled(i, sample_out):
                sample_out.x.append(i * factor + OFFSET)
                sample_out.forked.append(os.getppid() == parent)

            if setting == "thread running":
                threading.Thread(target=threading.Event().wait, daemon=True).start()
            ds = tl.empty(path)
            ds.create_tensor("x", dtype="int64")
            ds.create_tensor("forked", dtype="bool")
            scaled().eval(range(10), ds, num_workers=2, scheduler="processed", progressbar=False)
            print(json.dumps([ds.x.numpy().ravel().tolist(), sorted(set(ds.forked.numpy().ravel().tolist()))]))

        if __name__ == "__main__":
            main(*sys.argv[1:])
        """
    )
    path = tmp_path / "job.py"
    path.write_text(script)
    env = dict(os.environ)
    env.pop("TENSORLAKE_START_METHOD", None)
    if setting == "forkserver forced":
        env["TENSORLAKE_START_METHOD"] = "forkserver"
    out = subprocess.run(
        [sys.executable, str(path), str(tmp_path / "ds"), setting],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
        env=env,
    )
    values, fork_flags = json.loads(out.stdout.strip().splitlines()[-1])
    assert values == [i * 3 + 1000 for i in range(10)]
    assert fork_flags == [forked]


def test_a_process_forks_the_workers_of_every_eval(tmp_path):
    """Nothing an eval leaves behind (a progress monitor, writer threads) may keep the
    next eval from forking."""
    script = textwrap.dedent(
        """
        import json, os, sys
        import tensorlake as tl

        parent = os.getpid()

        @tl.compute
        def mark(i, sample_out):
            sample_out.forked.append(os.getppid() == parent)

        ds = tl.empty(sys.argv[1])
        ds.create_tensor("forked", dtype="bool")
        for _ in range(3):
            mark().eval(range(8), ds, num_workers=2, checkpoint_interval=4)
        print(json.dumps(ds.forked.numpy().ravel().tolist()))
        """
    )
    path = tmp_path / "evals.py"
    path.write_text(script)
    env = {k: v for k, v in os.environ.items() if k != "TENSORLAKE_START_METHOD"}
    out = subprocess.run(
        [sys.executable, str(path), str(tmp_path / "ds")],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
        env=env,
    )
    assert json.loads(out.stdout.strip().splitlines()[-1]) == [True] * 24


def test_a_bad_start_method_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("TENSORLAKE_START_METHOD", "vfork")
    ds = tl.empty(str(tmp_path / "ds"))
    ds.create_tensor("x", dtype="int64")
    with pytest.raises(ValueError, match="TENSORLAKE_START_METHOD must be one of"):
        make_rows().eval(range(4), ds, num_workers=2, progressbar=False)


def test_forkserver_workers_see_the_environment_of_each_eval(tmp_path):
    """A forkserver is started once; its workers must still see what the caller's
    environment is at each eval (credentials set since, TENSORLAKE_* settings)."""
    script = textwrap.dedent(
        """
        import json, os, sys
        import tensorlake as tl

        @tl.compute
        def env(i, sample_out):
            sample_out.value.append(os.environ.get("TL_TEST_VALUE", "unset"))

        def run(path):
            ds = tl.empty(path)
            ds.create_tensor("value", htype="text")
            env().eval(range(4), ds, num_workers=2, progressbar=False)
            return sorted(set(ds.value.numpy(aslist=True)))

        if __name__ == "__main__":
            first = run(sys.argv[1] + "/a")  # starts the forkserver
            os.environ["TL_TEST_VALUE"] = "set later"
            second = run(sys.argv[1] + "/b")
            print(json.dumps([first, second]))
        """
    )
    path = tmp_path / "job.py"
    path.write_text(script)
    env = {**os.environ, "TENSORLAKE_START_METHOD": "forkserver"}
    env.pop("TL_TEST_VALUE", None)
    out = subprocess.run(
        [sys.executable, str(path), str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
        env=env,
    )
    assert json.loads(out.stdout.strip().splitlines()[-1]) == [["unset"], ["set later"]]
