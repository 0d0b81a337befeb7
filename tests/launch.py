"""Runs the package's binaries and scripts as new processes, without a new interpreter.

Tests run ``bin/nas_search`` and friends as users do: a separate process, its own pid,
argv, environment, working directory, exit code and output, which can be killed or sent
Ctrl-C. A new interpreter would then import TensorFlow and Keras again, about 5 CPU-s a
process (measured: subprocesses were 432 of the suite's 954 CPU-s). Here each process is
forked from the forkserver of :mod:`nas_tf.processes` (an interpreter that has imported
NumPy, TensorFlow and Keras and started no TensorFlow runtime), then runs the script as
``python SCRIPT ARGS`` would (``runpy`` with ``__name__ == "__main__"``).

What differs from an exec, and where a test must not use this: start-up (TensorFlow is
already imported, so environment variables read at its import and start-up logging are
the forkserver's: tests of start-up noise exec a real interpreter), and exit (``os._exit``
after the script: ``atexit`` handlers do not run; nas_tf registers none).

:func:`run` and :class:`Popen` take the subset of :mod:`subprocess`'s arguments the tests
use, with ``args`` those of ``python SCRIPT ARGS`` or ``python -c CODE ARGS``
(``sys.executable`` first, or left out).
"""

import os
import pathlib
import runpy
import subprocess
import sys
import threading
import time

PIPE, STDOUT, DEVNULL = subprocess.PIPE, subprocess.STDOUT, subprocess.DEVNULL


class _Fd:
  """A file descriptor that crosses to the forked process as a duplicate (multiprocessing
  sends it to the forkserver with the process's arguments)."""

  def __init__(self, fd):
    self.fd = fd

  def __reduce__(self):
    from multiprocessing import reduction  # pylint: disable=g-import-not-at-top
    return _rebuild_fd, (reduction.DupFd(self.fd),)


def _rebuild_fd(dup):
  return dup.detach()


def _main(script, argv, env, cwd, stdout_fd, stderr_fd):
  os.chdir(cwd)
  os.environ.clear()
  os.environ.update(env)
  null = os.open(os.devnull, os.O_RDWR)
  os.dup2(null, 0)
  os.dup2(null if stdout_fd is None else stdout_fd, 1)
  os.dup2(null if stderr_fd is None else stderr_fd, 2)
  for fd in {null, stdout_fd, stderr_fd} - {None, 0, 1, 2}:
    os.close(fd)
  if script == "-c":  # python -c CODE ARGS
    sys.argv = ["-c", *argv[1:]]
    sys.path[0] = ""
    exec(compile(argv[0], "<string>", "exec"), {"__name__": "__main__"})  # pylint: disable=exec-used
    return
  sys.argv = [script, *argv]
  sys.path[0] = os.path.dirname(os.path.abspath(script))  # as `python SCRIPT` sets it
  runpy.run_path(script, run_name="__main__")


def _script_and_argv(args):
  args = [str(a) for a in args]
  if args[0] == sys.executable:
    args = args[1:]
  if args[0].startswith("-") and args[0] != "-c":
    raise ValueError(f"launch runs a script or -c CODE, not interpreter options: {args}")
  return args[0], args[1:]


class Popen:
  """A script running in a forked process, with :class:`subprocess.Popen`'s methods.

  ``stdout``/``stderr``: PIPE (read by :meth:`communicate`, to the end of the stream, so
  that what a grandchild such as nas_tf's log filter writes last is there too), STDOUT
  (stderr only), DEVNULL, or None (this process's own streams).
  """

  def __init__(self, args, *, env=None, cwd=None, stdout=None, stderr=None, text=False):
    # Imported here: a forked process imports this module to find _main, and must not
    # import nas_tf unless its script does (exports are reloaded without it).
    from nas_tf import processes  # pylint: disable=g-import-not-at-top
    script, argv = _script_and_argv(args)
    self.args, self.text, self.returncode = args, text, None
    self._readers, self._chunks, to_close = {}, {}, []

    def target(name, where, own_fd):
      if where == DEVNULL:
        return None
      if where is None:
        return _Fd(own_fd)
      if where != PIPE:
        raise ValueError(f"launch takes PIPE, STDOUT, DEVNULL or None, not {where!r}")
      r, w = os.pipe()
      to_close.append(w)
      self._chunks[name] = []
      self._readers[name] = threading.Thread(target=self._drain, args=(r, name), daemon=True)
      return _Fd(w)

    out = target("stdout", stdout, 1)
    err = out if stderr == STDOUT else target("stderr", stderr, 2)
    self._process = processes.context().Process(
        target=_main, args=(script, argv, dict(os.environ if env is None else env),
                            str(cwd or os.getcwd()), out, err))
    try:
      self._process.start()
    finally:
      for fd in to_close:  # the child holds its own copies now
        os.close(fd)
    for reader in self._readers.values():
      reader.start()
    self.pid = self._process.pid

  def _drain(self, fd, name):
    with os.fdopen(fd, "rb") as f:
      for chunk in iter(lambda: f.read1(1 << 16), b""):
        self._chunks[name].append(chunk)

  def poll(self):
    if self.returncode is None and self._process.exitcode is not None:
      self.returncode = self._process.exitcode
    return self.returncode

  def wait(self, timeout=None):
    self._process.join(timeout)
    if self._process.exitcode is None:
      raise subprocess.TimeoutExpired(self.args, timeout)
    return self.poll()

  def communicate(self, timeout=None):
    deadline = None if timeout is None else time.monotonic() + timeout
    self.wait(timeout)
    out = {}
    for name, reader in self._readers.items():
      reader.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
      if reader.is_alive():
        raise subprocess.TimeoutExpired(self.args, timeout)
      data = b"".join(self._chunks[name])
      out[name] = data.decode(errors="replace") if self.text else data
    return out.get("stdout"), out.get("stderr")

  def send_signal(self, sig):
    if self.poll() is None:
      os.kill(self.pid, sig)

  def kill(self):
    if self.poll() is None:
      self._process.kill()

  def terminate(self):
    if self.poll() is None:
      self._process.terminate()


def _stat(pid):
  """``(state, parent pid)`` of a process from /proc, or None if it is gone."""
  try:
    fields = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
  except (OSError, IndexError):  # not a process, or gone meanwhile
    return None
  return fields[0], int(fields[1])


def running(pid):
  """Whether ``pid`` is a process that has not exited (neither gone nor a zombie)."""
  stat = _stat(pid)
  return stat is not None and stat[0] != "Z"


def descendants(pid):
  """The live (non-zombie) processes below ``pid`` (children, theirs, ...), from /proc:
  ``{pid: parent pid}``. A launched binary's own workers and servers are forked by its
  forkserver, so they are grandchildren, not children."""
  parent = {}
  for entry in pathlib.Path("/proc").iterdir():
    stat = _stat(entry.name) if entry.name.isdigit() else None
    if stat is not None and stat[0] != "Z":
      parent[int(entry.name)] = stat[1]
  below, frontier = {}, [pid]
  while frontier:
    here = frontier.pop()
    kids = [c for c, pp in parent.items() if pp == here]
    below.update((k, here) for k in kids)
    frontier += kids
  return below


def run(args, *, env=None, cwd=None, capture_output=False, stdout=None, stderr=None,
        text=False, timeout=None, check=False):
  """Like :func:`subprocess.run` for a script (see the module docstring)."""
  if capture_output:
    stdout = stderr = PIPE
  proc = Popen(args, env=env, cwd=cwd, stdout=stdout, stderr=stderr, text=text)
  try:
    out, err = proc.communicate(timeout)
  except subprocess.TimeoutExpired:
    proc.kill()
    proc.wait()
    raise
  result = subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
  if check:
    result.check_returncode()
  return result
