"""``RunCommandTask``: a task whose main work is one command, run in its own process group."""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import subprocess
from abc import abstractmethod
from pathlib import Path
from typing import IO, Any

from taskengine.errors import TaskCanceled
from taskengine.tasks._base import DTD, TD
from taskengine.tasks._external import BaseExternalTask

__all__ = ["RunCommandTask"]

_POLL = 0.05


class RunCommandTask(BaseExternalTask[TD, DTD], abstract=True):
    """A task that runs the command :meth:`_cmdline` returns.

    The command runs in its own process group; :meth:`abort` (and a cancel of the task,
    which aborts it) kills the whole group, grandchildren included. Its output goes to the
    debug log file :attr:`CMD_LOG_FILENAME`, stored as an artifact; with
    :attr:`CAPTURE_OUTPUT_FILENAME` set, its stdout goes to that file in the execution
    directory instead (and is stored as an artifact too). :meth:`task_succeeded` decides
    from the exit code whether the task succeeded.
    """

    CAPTURE_OUTPUT_FILENAME: str | None = None
    """If set, the command's stdout is saved in this file of the execution directory."""
    CMD_LOG_FILENAME = "cmd-output.log"
    """The debug log file holding the command line, its output and its exit code."""
    CMD_LOG_SEPARATOR = "--------------------"

    @abstractmethod
    def _cmdline(self) -> list[str]:
        """The command to run, as an argv list."""

    def _cmd_env(self) -> dict[str, str] | None:
        """The command's environment; None inherits the worker's."""
        return None

    def task_succeeded(self, returncode: int | None, execute_directory: Path) -> bool:
        """Whether the task succeeded: by default, exit code 0 (None means aborted)."""
        return returncode == 0

    def run(self, execute_directory: Path) -> bool:
        """Run :meth:`_cmdline` in ``execute_directory``; ask :meth:`task_succeeded`."""
        returncode = self.run_cmd(
            self._cmdline(),
            execute_directory,
            env=self._cmd_env(),
            capture_stdout_filename=self.CAPTURE_OUTPUT_FILENAME,
        )
        if returncode is None:
            return False
        return self.task_succeeded(returncode, execute_directory)

    def upload_artifacts(self, execute_directory: Path, *, execution_success: bool) -> None:
        """Store the captured output file, if any, as an artifact."""
        if self.CAPTURE_OUTPUT_FILENAME:
            captured = execute_directory / self.CAPTURE_OUTPUT_FILENAME
            if captured.is_file():
                self.upload_artifact(captured, self.CAPTURE_OUTPUT_FILENAME)

    def run_cmd(
        self,
        cmd: list[str],
        working_directory: Path,
        *,
        env: dict[str, str] | None = None,
        run_as_root: bool = False,
        capture_stdout_filename: str | None = None,
    ) -> int | None:
        """Run ``cmd`` in ``working_directory`` in a new process group, logging to
        :attr:`CMD_LOG_FILENAME`; return its exit code, or None if the task was aborted
        (the group is then killed). ``run_as_root`` is refused: workers run commands as
        their own user."""
        if run_as_root:
            raise PermissionError("run_as_root is not supported: commands run as the worker")
        if self.aborted:
            return None
        with self.open_debug_log_file(self.CMD_LOG_FILENAME) as log:
            log.write(f"cmd: {shlex.join(cmd)}\n")
            log.write(f"working directory: {working_directory}\n")
            log.write(
                "output (contains stdout and stderr):\n"
                if capture_stdout_filename is None
                else f"stdout is captured in {capture_stdout_filename}; stderr:\n"
            )
            log.flush()
            if capture_stdout_filename is None:
                returncode = self._spawn_and_wait(cmd, working_directory, env, log, log)
            else:
                with open(Path(working_directory) / capture_stdout_filename, "wb") as out:
                    returncode = self._spawn_and_wait(cmd, working_directory, env, out, log)
            log.write(f"\n{self.CMD_LOG_SEPARATOR}\n")
            log.write("aborted: True\n" if returncode is None else f"returncode: {returncode}\n")
        return returncode

    def _spawn_and_wait(
        self,
        cmd: list[str],
        cwd: Path,
        env: dict[str, str] | None,
        stdout: IO[Any],
        stderr: IO[Any],
    ) -> int | None:
        process = subprocess.Popen(
            cmd,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=stdout,
            stderr=stderr,
            start_new_session=True,  # its own process group: abort kills the whole group
        )
        self._process_group = process.pid
        try:
            while True:
                try:
                    returncode = process.wait(timeout=_POLL)
                    break
                except subprocess.TimeoutExpired:
                    if self.aborted:
                        self._kill_group(process)
                        return None
            # The command ended; whatever it left running in its group goes with it.
            self._kill_group(process)
            return None if self.aborted else returncode
        except TaskCanceled:
            self.abort()
            self._kill_group(process)
            raise
        finally:
            self._process_group = None

    def _kill_group(self, process: subprocess.Popen[bytes]) -> None:
        """SIGKILL the command's whole group (grandchildren too) and reap the command."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
