"""What a new user meets first (issue 22), without a cluster: `env` prints sizes
as users write them; the too-small error names the command-line option;
check_workers returns each worker's preload path (a probe run in a process
under the shim, through a client that runs it there); an installed copy of the
package finds the shim of its own prefix."""
import contextlib
import io
import os
import re
import shutil
import subprocess
import sys
import tempfile

from common import HERE, check, finish, preload_path

from execmem_dask.__main__ import main as execmem_main

PACKAGE = os.path.join(os.path.dirname(HERE), "execmem_dask")


def cli(*args):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = execmem_main(list(args))
    return status, out.getvalue(), err.getvalue()


def python(code, env, cwd="/"):
    """Runs code in a fresh python3 (the one running this test) with env only."""
    return subprocess.run([sys.executable, "-c", code], env=env, cwd=cwd, capture_output=True,
                          text=True, timeout=120)


if __name__ == "__main__":
    preload = preload_path()
    status, out, err = cli("env", "--memory-limit", "1.5GB", "--preload", preload)
    lines = dict(line[len("export "):].split("=", 1) for line in out.splitlines())
    sizes = {k: lines.get(k) for k in ("EXECMEM_INITIAL", "EXECMEM_MAX", "EXECMEM_OVERHEAD")}
    check(status == 0 and all(v and re.fullmatch(r"[0-9]+m", v) for v in sizes.values()),
          f"env prints sizes as users write them (MiB): {sizes}")
    check(sizes["EXECMEM_MAX"] == "924m" and sizes["EXECMEM_OVERHEAD"] == "92m",
          f"1.5GB (10^9 bytes) gives max 924m, overhead 92m as documented: {sizes}")

    status, out, err = cli("env", "--memory-limit", "200MB", "--preload", preload)
    check(status == 2 and "--untracked" in err,
          f"the too-small error names the option --untracked: {err.strip()}")

    base = {k: v for k, v in os.environ.items() if k not in ("LD_PRELOAD", "EXECMEM_PRELOAD")}
    base["PYTHONPATH"] = os.path.dirname(PACKAGE)
    probe = ("import execmem_dask\n"
             "class Client:\n"
             "    def run(self, fn):\n"
             "        return {'tcp://127.0.0.1:1': fn()}\n"
             "print(repr(execmem_dask.check_workers(Client())))\n")
    r = python(probe, dict(base, LD_PRELOAD=os.path.abspath(preload)))
    check(r.returncode == 0 and os.path.realpath(preload) in r.stdout.replace("'", " "),
          f"check_workers returns each worker's preload: {r.stdout.strip()} {r.stderr[-300:]}")
    r = python(probe, base)
    check(r.returncode != 0 and "not loaded" in r.stderr,
          "check_workers raises for a worker without the shim")

    with tempfile.TemporaryDirectory(prefix="execmem-dask-prefix-") as prefix:
        site = os.path.join(prefix, "lib", "python3", "dist-packages")
        shutil.copytree(PACKAGE, os.path.join(site, "execmem_dask"),
                        ignore=shutil.ignore_patterns("__pycache__"))
        installed = os.path.join(prefix, "lib", "libexecmem_preload.so")
        shutil.copy(preload, installed)
        r = python("import execmem_dask; print(execmem_dask.find_preload())",
                   dict(base, PYTHONPATH=site))
        check(r.returncode == 0 and r.stdout.strip() == installed,
              f"installed under a custom prefix, find_preload finds {installed}: "
              f"{r.stdout.strip()} {r.stderr.strip()[-200:]}")
    finish()
