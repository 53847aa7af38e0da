"""Every fenced ``python`` block of README.md and docs/*.md runs, each in a fresh process.

Conventions (docs/development.md, "Running tests"):

- A block runs as if after ``import taskengine`` and ``engine = taskengine.connect()``, on a
  fresh SQLite store with the schema installed (``$TASKENGINE_URL``), in a fresh temporary
  directory that is also on ``PYTHONPATH``.
- A block whose first line is ``# <relative path>`` (``# myapp/tasks.py``, ``# jobs.yaml``) is
  a file the page asks the reader to create: the page's file blocks (``python`` or ``yaml``)
  are written into that directory before any of the page's blocks runs.
- ``<!-- example: fragment -->`` on the line before the fence: not run (signatures, partial
  snippets). ``<!-- example: worker -->``: a real ``taskengine-worker`` on that store, importing
  the page's Python file blocks that are package modules (``myapp/tasks.py``, not ``app.py``),
  runs while the block does.
- A block fails the test on a non-zero exit or when it does not end within the timeout.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
EXAMPLES_DIR = Path(__file__).resolve().parent / "docs_examples"
# Pages whose python blocks are not run (none: every page's examples run).
SKIPPED_PAGES: set[str] = set()
BLOCK_TIMEOUT = 90.0
FENCE = re.compile(r"^```(\w+)\s*$")
MARKER = re.compile(r"^<!--\s*example:\s*(\w+)\s*-->\s*$")
FILE_HEADER = re.compile(r"^#\s+([\w./-]+\.(?:py|ya?ml))\s*$")
KINDS = {"run", "fragment", "worker"}

# Runs the block with the names every page assumes, and its page and line in tracebacks.
RUNNER = """\
import sys
import taskengine
page, line, path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
source = "\\n" * line + open(path, encoding="utf-8").read()
namespace = {"__name__": "__main__", "taskengine": taskengine, "engine": taskengine.connect()}
exec(compile(source, page, "exec"), namespace)
"""


@dataclass(frozen=True)
class Block:
    """One fenced code block of a page."""

    page: Path
    line: int  # of the fence; the code starts on the next line
    language: str
    kind: str
    code: str

    @property
    def file_name(self) -> str | None:
        """The relative path in a ``# <path>`` first line, if the block is such a file."""
        first = self.code.splitlines()[0] if self.code else ""
        match = FILE_HEADER.match(first)
        return match.group(1) if match else None

    @property
    def id(self) -> str:
        """``page:line`` for the test id."""
        return f"{self.page.relative_to(REPO)}:{self.line}"


def pages() -> list[Path]:
    """README.md and docs/*.md, minus the pages not covered yet."""
    docs = sorted(p for p in (REPO / "docs").glob("*.md") if p.name not in SKIPPED_PAGES)
    return [REPO / "README.md", *docs]


def blocks_of(page: Path) -> Iterator[Block]:
    """The page's fenced blocks with a language, with their marker."""
    lines = page.read_text(encoding="utf-8").splitlines()
    index = 0
    while index < len(lines):
        fence = FENCE.match(lines[index])
        if not fence:
            index += 1
            continue
        marker = MARKER.match(lines[index - 1]) if index else None
        kind = marker.group(1) if marker else "run"
        end = index + 1
        while end < len(lines) and lines[end].rstrip() != "```":
            end += 1
        yield Block(page, index + 1, fence.group(1), kind, "\n".join(lines[index + 1 : end]) + "\n")
        index = end + 1


ALL_BLOCKS = [block for page in pages() for block in blocks_of(page)]
PYTHON_BLOCKS = [block for block in ALL_BLOCKS if block.language == "python"]


def test_collects_the_python_blocks() -> None:
    """Collection finds blocks on several pages and only known markers."""
    assert len({block.page for block in PYTHON_BLOCKS}) >= 4
    assert {block.kind for block in ALL_BLOCKS} <= KINDS, "unknown <!-- example: ... --> marker"


def write_page_files(page: Path, directory: Path) -> list[str]:
    """Write the page's file blocks into ``directory``; return the package modules among them."""
    modules = []
    for block in ALL_BLOCKS:
        name = block.file_name
        if block.page != page or name is None or block.language not in ("python", "yaml"):
            continue
        target = directory / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(block.code, encoding="utf-8")
        if name.endswith(".py") and "/" in name:  # a package module, not a script like app.py
            modules.append(name.removesuffix(".py").replace("/", "."))
    return modules


def start_worker(url: str, modules: list[str], directory: Path) -> subprocess.Popen[bytes]:
    """A real ``taskengine-worker`` on ``url`` importing ``modules``."""
    from taskengine._binaries import find_worker_binary, worker_environment

    argv = [find_worker_binary(), "--url", url, "--name", "docs-example-worker"]
    for module in modules:
        argv += ["--import", module]
    env = {**worker_environment(directory, EXAMPLES_DIR), "PYTHONDONTWRITEBYTECODE": "1"}
    with (directory.parent / "worker.log").open("wb") as log:  # the worker keeps its own copy
        return subprocess.Popen(argv, cwd=directory, env=env, stdout=log, stderr=subprocess.STDOUT)


def stop_worker(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL if it does not leave in time."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.mark.parametrize("block", PYTHON_BLOCKS, ids=lambda block: block.id)
def test_docs_example_runs(block: Block, tmp_path: Path) -> None:
    """The block exits 0 within the timeout on a fresh store (and a worker if marked)."""
    if block.kind == "fragment":
        pytest.skip("marked <!-- example: fragment -->")
    import taskengine

    directory = tmp_path / "example"
    directory.mkdir()
    url = f"sqlite:///{tmp_path / 'taskengine.db'}"
    taskengine.connect(url).install()
    modules = write_page_files(block.page, directory)
    code_file = tmp_path / "block.py"
    code_file.write_text(block.code, encoding="utf-8")
    env = {
        **os.environ,
        "TASKENGINE_URL": url,
        "PYTHONPATH": os.pathsep.join(
            [str(directory), str(EXAMPLES_DIR), *filter(None, [os.environ.get("PYTHONPATH")])]
        ),
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    worker = start_worker(url, modules, directory) if block.kind == "worker" else None
    try:
        argv = [sys.executable, "-c", RUNNER, block.id, str(block.line), str(code_file)]
        try:
            result = subprocess.run(
                argv,
                cwd=directory,
                env=env,
                capture_output=True,
                text=True,
                timeout=BLOCK_TIMEOUT,
            )
        except subprocess.TimeoutExpired as expired:
            pytest.fail(f"{block.id} did not end within {BLOCK_TIMEOUT}s: {expired.stderr!r}")
    finally:
        if worker is not None:
            stop_worker(worker)
    worker_log = (tmp_path / "worker.log").read_text(errors="replace") if worker else ""
    assert result.returncode == 0, (
        f"{block.id} exited with {result.returncode}\n--- stdout\n{result.stdout}"
        f"\n--- stderr\n{result.stderr}\n--- worker log\n{worker_log}"
    )
