"""python3 -m execmem_dask env|worker — start Dask workers under execmem.

  env --memory-limit 4GB [--format sh|json|nanny]
        the worker's environment: `sh` prints export lines for a process that
        is the worker (dask worker --no-nanny, a container); `nanny` prints the
        DASK_* variables with which `dask worker` (a nanny) spawns its workers
        under execmem; `json` the worker's variables as JSON.
  worker [SCHEDULER] --memory-limit 4GB [dask worker options...]
        runs `dask worker SCHEDULER ... --memory-limit 4GB --preload
        execmem_dask` with the nanny's variables set.
  --shared NAME [--shared-capacity SIZE] (either command): the workers join
        the shared pool NAME of this host instead of a static budget each;
        --memory-limit is then what one worker may use at most (the host's).
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import sys

from execmem_dask.launch import PYTHON_OBJECTS, UNTRACKED_DEFAULT, nanny_environ, worker_env


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--memory-limit", required=True,
                   help="the worker's Dask memory_limit, e.g. 4GB (per worker process)")
    p.add_argument("--preload", help="path of libexecmem_preload.so (default: found)")
    p.add_argument("--stats-dir", help="each worker writes execmem-<pid>.json here at exit")
    p.add_argument("--untracked", default=str(UNTRACKED_DEFAULT),
                   help="RSS a worker holds outside execmem (default 96MiB)")
    p.add_argument("--python-objects", choices=PYTHON_OBJECTS, default=None,
                   help="arenas (default): pymalloc with its arenas from execmem; malloc: "
                        "PYTHONMALLOC=malloc; pymalloc: CPython's own arenas, outside the budget")
    p.add_argument("--no-python-malloc", action="store_true",
                   help="the same as --python-objects pymalloc")
    p.add_argument("--shared", metavar="NAME",
                   help="join the shared pool NAME (/dev/shm/execmem.NAME): every worker of "
                        "this host started with the same NAME borrows from one capacity; "
                        "--memory-limit is then what one worker may use at most")
    p.add_argument("--shared-capacity", metavar="SIZE",
                   help="the pool's capacity, e.g. 32GB (fixed by the first worker to join; "
                        "default: the cgroup's limit, else the machine's memory)")


def _kwargs(a) -> dict:
    objects = a.python_objects or ("pymalloc" if a.no_python_malloc else None)
    if a.shared_capacity and not a.shared:
        raise ValueError("execmem: --shared-capacity needs --shared NAME")
    return dict(preload=a.preload, stats_dir=a.stats_dir, untracked=a.untracked,
                python_objects=objects, shared=a.shared, shared_capacity=a.shared_capacity)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m execmem_dask",
                                     description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    env = sub.add_parser("env", help="print the worker environment")
    _common(env)
    env.add_argument("--format", choices=("sh", "json", "nanny"), default="sh")
    worker = sub.add_parser("worker", help="exec `dask worker` under execmem")
    _common(worker)
    args, rest = parser.parse_known_args(argv)
    try:
        if args.command == "env":
            if rest:
                parser.error(f"unrecognized arguments: {' '.join(rest)}")
            if args.format == "nanny":
                variables = nanny_environ(args.memory_limit, **_kwargs(args))
            else:
                variables = worker_env(args.memory_limit, **_kwargs(args))
            if args.format == "json":
                print(json.dumps(variables, indent=2, sort_keys=True))
            else:
                for k, v in sorted(variables.items()):
                    print(f"export {k}={shlex.quote(v)}")
            return 0
        variables = nanny_environ(args.memory_limit, **_kwargs(args))
    except (ValueError, FileNotFoundError) as e:
        print(e, file=sys.stderr)
        return 2
    dask = shutil.which("dask")
    command = ([dask] if dask else [sys.executable, "-m", "distributed.cli.dask_worker"])
    if dask:
        command.append("worker")
    # The scheduler's address and every other option go to dask worker as given.
    command += rest + ["--memory-limit", args.memory_limit, "--preload", "execmem_dask"]
    os.environ.update(variables)
    os.execv(command[0], command)
    return 1  # not reached


if __name__ == "__main__":
    sys.exit(main())
