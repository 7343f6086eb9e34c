"""`kgraph launch -n N script.py [args]`: run a training script on N local MPI workers.

It runs `mpiexec -n N <python> -m mpi4py script.py args`: `python -m mpi4py` makes an
uncaught exception in one rank abort the whole job (MPI_Abort) instead of leaving the other
ranks waiting in a collective, and mpiexec ends every rank when one dies. The exit status is
mpiexec's: non-zero when any worker failed.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig


class LaunchError(ValueError):
    """No MPI launcher, or a script that does not exist."""


def find_mpiexec():
    """The mpiexec of the `mpich` wheel beside this Python, else the first on PATH."""
    scripts = sysconfig.get_path("scripts")
    for name in ("mpiexec", "mpiexec.hydra", "mpirun"):
        beside = os.path.join(scripts, name)
        if os.path.exists(beside):
            return beside
    for name in ("mpiexec", "mpirun"):
        found = shutil.which(name)
        if found:
            return found
    raise LaunchError("kgraph launch needs an MPI launcher (mpiexec): pip install "
                      "'kgraph[distributed]' installs mpi4py and the mpich wheel")


def command(workers, script, args=(), hosts=None):
    """The mpiexec command line that starts `workers` ranks of `script`."""
    if not isinstance(workers, int) or workers < 1:
        raise LaunchError(f"the number of workers must be a positive integer. Received: "
                          f"-n {workers!r}")
    if not os.path.isfile(script):
        raise LaunchError(f"no such script: {script!r}")
    cmd = [find_mpiexec(), "-n", str(workers)]
    if hosts:
        cmd += ["-hosts", hosts]
    return cmd + [sys.executable, "-m", "mpi4py", script] + list(args)


def launch(workers, script, args=(), hosts=None, timeout=None):
    """Run the job and return its exit status."""
    return subprocess.call(command(workers, script, args, hosts), timeout=timeout)


def add_parser(sub):
    """The `launch` subcommand of the `kgraph` CLI."""
    p = sub.add_parser("launch", help="run a training script on N MPI workers",
                       description="Run SCRIPT on N workers with mpiexec (python -m mpi4py), "
                                   "for MultiWorkerMirroredStrategy.")
    p.add_argument("-n", "--workers", type=int, required=True, help="number of workers")
    p.add_argument("--hosts", help="comma-separated hosts (default: this machine)")
    p.add_argument("script", help="the Python training script")
    p.add_argument("args", nargs="*", help="arguments for the script")
    p.set_defaults(fn=lambda a: launch(a.workers, a.script, a.args, a.hosts))
