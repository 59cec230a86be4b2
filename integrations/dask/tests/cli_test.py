"""python3 -m execmem_dask (its main() in this process for `env`): `env` prints the worker's variables (and refuses a
memory_limit too small for a budget); `worker` starts `dask worker` (a nanny
and its worker process) against a separately started `dask scheduler`, as on
another host, and that worker runs under the shim with the derived budget."""
import contextlib
import io
import os
import subprocess
import sys
import tempfile

from common import HERE, check, finish, preload_path

import execmem_dask
from distributed import Client
from execmem_dask.__main__ import main as execmem_main

PACKAGE_PARENT = os.path.dirname(HERE)


def cli(*args):
    """main() of `python3 -m execmem_dask` in this process: (status, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = execmem_main(list(args))
    return status, out.getvalue(), err.getvalue()


if __name__ == "__main__":
    preload = preload_path()
    status, out, _ = cli("env", "--memory-limit", "1.5GB", "--preload", preload)
    want = execmem_dask.worker_env("1.5GB", preload=preload)
    lines = dict(line[len("export "):].split("=", 1) for line in out.splitlines())
    check(status == 0 and lines.get("EXECMEM_MAX") == want["EXECMEM_MAX"]
          and lines.get("LD_PRELOAD") == preload and "PYTHONMALLOC" not in lines
          and lines.get("EXECMEM_DASK_PYTHON_ARENAS") == "1",
          f"env prints the worker's variables: EXECMEM_MAX={lines.get('EXECMEM_MAX')}, "
          "Python's arenas from execmem, no PYTHONMALLOC")
    status, out, _ = cli("env", "--memory-limit", "1.5GB", "--preload", preload,
                         "--python-objects", "malloc")
    lines = dict(line[len("export "):].split("=", 1) for line in out.splitlines())
    check(status == 0 and lines.get("PYTHONMALLOC") == "malloc"
          and lines.get("EXECMEM_DASK_PYTHON_ARENAS") == "0",
          "--python-objects malloc (the opt-out) sets PYTHONMALLOC=malloc")
    b = execmem_dask.budgets("1.5GB")
    ceiling = 0.8 * 1.5e9
    check(b["max"] + b["overhead"] + (32 << 20) + (96 << 20) <= ceiling,
          f"max {b['max'] >> 20} MiB + overhead {b['overhead'] >> 20} MiB stay under pause")
    status, out, err = cli("env", "--memory-limit", "200MB", "--preload", preload)
    check(status == 2 and "too small" in err and out == "",
          f"a memory_limit too small is refused: {err.strip()[:90]}...")

    with tempfile.TemporaryDirectory(prefix="execmem-dask-cli-") as tmp:
        scheduler_file = os.path.join(tmp, "scheduler.json")
        base = dict(os.environ)
        base.pop("LD_PRELOAD", None)
        scheduler = subprocess.Popen(
            [sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1",
             "--port", "0", "--dashboard-address", ":0", "--scheduler-file", scheduler_file],
            env=base, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        worker = None
        try:
            client = Client(scheduler_file=scheduler_file, timeout="120s")
            worker = subprocess.Popen(
                [sys.executable, "-m", "execmem_dask", "worker", "--scheduler-file",
                 scheduler_file, "--memory-limit", "1.5GB", "--preload", preload,
                 "--nthreads", "1", "--dashboard-address", ":0"],
                env=dict(base, PYTHONPATH=PACKAGE_PARENT), stdout=subprocess.DEVNULL,
                stderr=open(os.path.join(tmp, "worker.log"), "w"))
            try:
                client.wait_for_workers(1, timeout=120)
            except Exception:
                print(open(os.path.join(tmp, "worker.log")).read()[-3000:])
                raise
            check(len(execmem_dask.check_workers(client)) == 1,
                  "`python3 -m execmem_dask worker`: the worker runs under the shim")
            (stats,) = client.run(execmem_dask.worker_stats).values()
            check(stats.get("max") == b["max"],
                  f"its plugin (--preload execmem_dask) reports max {stats.get('max')}")
            nanny = client.run(lambda: os.getppid())
            nanny_maps = open(f"/proc/{list(nanny.values())[0]}/maps").read()
            check("libexecmem_preload" not in nanny_maps,
                  "the nanny itself is not under the shim (pre-spawn-environ)")
            client.close()
        finally:
            for p in (worker, scheduler):
                if p is not None:
                    p.terminate()
            for p in (worker, scheduler):
                if p is not None:
                    try:
                        p.wait(timeout=60)
                    except subprocess.TimeoutExpired:
                        p.kill()
    finish()
