"""Task functions that leave things in (or do things to) their working directory, for
``test_executor_workdir.py``: the next task must start in an empty one all the same."""

from __future__ import annotations

import os
import shutil
import tempfile
from typing import Any


def where() -> dict[str, Any]:
    """The working directory and what is in it."""
    return {"cwd": os.getcwd(), "entries": sorted(os.listdir("."))}


def leave_file() -> None:
    with open("left.txt", "w") as file:
        file.write("left behind")


def leave_tree() -> None:
    os.makedirs("a/b/c")
    with open("a/b/c/deep.txt", "w") as file:
        file.write("deep")


def leave_symlink() -> None:
    os.symlink("/nonexistent", "dangling")


def move_file_in() -> None:
    """A file made elsewhere and renamed into the directory (no create event there)."""
    fd, path = tempfile.mkstemp(dir=os.path.dirname(os.getcwd()))
    os.close(fd)
    os.rename(path, "moved-in.txt")


def leave_and_remove() -> None:
    """Create and remove a file: the directory is empty again."""
    leave_file()
    os.remove("left.txt")


def remove_workdir() -> None:
    shutil.rmtree(os.getcwd())


def replace_workdir() -> None:
    """Rename the directory away and put a non-empty one in its place."""
    cwd = os.getcwd()
    os.rename(cwd, cwd + "-renamed")
    os.mkdir(cwd)
    with open(os.path.join(cwd, "impostor.txt"), "w") as file:
        file.write("not empty")


def move_away() -> None:
    os.chdir("/")
