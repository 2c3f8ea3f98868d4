"""Run the real ``decone`` entry point (``decone.cli:main``) in child processes, fast.

Starting Python and importing torch costs seconds per process, so the bad-input catalogues use a *fork server*: one
subprocess imports ``decone.cli`` (and the heavy libraries its commands load lazily) once, then forks a fresh child
per case. Each child is a separate process that runs ``main()`` with its own argv, working folder, environment and
stdout/stderr files, and exits with main's exit code, exactly as the console script would (an exception main lets
through is printed as a traceback with exit code 1, as Python does). Nothing a child does reaches the server or the
next case.

Set ``DECONE_TEST_NO_FORK=1`` to start a plain ``python -c 'from decone.cli import main; main()'`` per case instead.
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import tempfile
from pathlib import Path

BASE_ENV = {"HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "COLUMNS": "200", "OMP_NUM_THREADS": "1"}

SERVER = r"""
import json, os, sys, traceback
import decone.cli
for module in ("transformers", "scipy.stats", "sklearn.linear_model", "safetensors.torch", "decone.encoder",
               "decone.data", "decone.evaluate.runner", "decone.diagnostics.report", "decone.classify.model"):
    __import__(module)
if os.environ.get("DECONE_TEST_WARM_MODEL"):  # load a model once so that the children find transformers' lazy modules loaded
    from decone import Encoder
    Encoder.load(os.environ["DECONE_TEST_WARM_MODEL"], device="cpu").encode(["warm up"], batch_size=1)
sys.stdout.write("ready\n"); sys.stdout.flush()
for line in sys.stdin:
    req = json.loads(line)
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            os.chdir(req["cwd"])
            os.environ.update(req["env"])
            for fd, name, flags in ((0, os.devnull, os.O_RDONLY), (1, req["stdout"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC),
                                    (2, req["stderr"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC)):
                os.dup2(os.open(name, flags, 0o600), fd)
            sys.argv = ["decone", *req["argv"]]
            try:
                decone.cli.main()
                code = 0
            except SystemExit as exc:
                if exc.code is None or isinstance(exc.code, int):
                    code = exc.code or 0
                else:
                    print(exc.code, file=sys.stderr)
                    code = 1
            except BaseException:
                traceback.print_exc()
                code = 1
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    sys.stdout.write(json.dumps({"rc": os.waitstatus_to_exitcode(status)}) + "\n")
    sys.stdout.flush()
"""


class CliRunner:
    """``runner(*argv, cwd=..., env=...) -> subprocess.CompletedProcess`` through the fork server (or plain
    subprocesses where ``DECONE_TEST_NO_FORK`` is set)."""

    def __init__(self, timeout: float = 180, warm_model: Path | None = None):
        self.timeout = timeout
        self.fork = os.environ.get("DECONE_TEST_NO_FORK", "") in ("", "0")
        self.env = {**os.environ, **BASE_ENV}
        if warm_model is not None:
            self.env["DECONE_TEST_WARM_MODEL"] = str(warm_model)
        self.proc = None
        self.tmp = Path(tempfile.mkdtemp(prefix="decone-cli-"))
        if self.fork:
            self.proc = subprocess.Popen([sys.executable, "-c", SERVER], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                         env=self.env, text=True)
            assert self._read_line(300) == "ready", "the CLI fork server did not start"

    def _read_line(self, timeout: float) -> str:
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        if not ready:
            self.close()
            raise TimeoutError(f"CLI case ran past {timeout} s")
        return self.proc.stdout.readline().strip()

    def __call__(self, *argv: str, cwd: Path, env: dict | None = None, timeout: float | None = None) -> subprocess.CompletedProcess:
        argv = [str(a) for a in argv]
        if not self.fork:
            return subprocess.run([sys.executable, "-c", "from decone.cli import main; main()", *argv], cwd=cwd,
                                  env={**self.env, **(env or {})}, capture_output=True, text=True,
                                  timeout=timeout or self.timeout)
        out, err = self.tmp / "stdout", self.tmp / "stderr"
        self.proc.stdin.write(json.dumps({"argv": argv, "cwd": str(cwd), "env": env or {}, "stdout": str(out),
                                          "stderr": str(err)}) + "\n")
        self.proc.stdin.flush()
        rc = json.loads(self._read_line(timeout or self.timeout))["rc"]
        return subprocess.CompletedProcess(["decone", *argv], rc, out.read_text(errors="replace"),
                                           err.read_text(errors="replace"))

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


def assert_clean_error(proc: subprocess.CompletedProcess, *fragments: str) -> str:
    """Exit code 2, exactly one ``error:`` line holding every fragment, no traceback. -> the error line."""
    assert proc.returncode == 2, (proc.returncode, proc.stdout[-2000:], proc.stderr[-4000:])
    assert "Traceback" not in proc.stderr and "Traceback" not in proc.stdout, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, proc.stderr
    for fragment in fragments:
        assert fragment in errors[0], (fragment, errors[0])
    return errors[0]


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` (relative path -> content): to show a failed command left nothing behind."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def write(path: Path, content) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    (path.write_bytes if isinstance(content, bytes) else path.write_text)(content)
    return path


def run_cli(args: list[str]) -> tuple[int, str]:
    """``decone ARGS`` in this process through :func:`decone.cli.main` -> (exit code, stdout + stderr): the real
    error path (one line, exit 2) without a subprocess."""
    import contextlib
    import io

    from decone.cli import main

    out = io.StringIO()
    code = 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        try:
            main(list(args))
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    return code, out.getvalue()
