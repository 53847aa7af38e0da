"""docs/compatibility.md names only tests that exist, so its table cannot rot unnoticed."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "docs" / "compatibility.md"

# `tests/py/test_x.py::test_name` or `tests/cpp/x_test.cpp::Suite.Name`, as the page writes them.
REFERENCE = re.compile(r"`(tests/(?:py|cpp)/[\w/]+\.(?:py|cpp))::([\w.]+)`")
SECTIONS = (
    "## debusine (current): `debusine.tasks`",
    "## debusine (early): `debusine.tasks.Task`",
    "## jobcontrol: `jobcontrol.interfaces`",
    "## pulpcore: `pulpcore.tasking`",
)


def named_tests(text: str) -> list[tuple[str, str]]:
    """Every (file, test) pair the text names, in order."""
    return REFERENCE.findall(text)


def missing_reason(path: str, name: str) -> str | None:
    """Why ``path::name`` does not name an existing test, or None when it does."""
    source_file = REPO / path
    if not source_file.is_file():
        return f"{path} does not exist"
    source = source_file.read_text(encoding="utf-8")
    if path.endswith(".py"):
        pattern = rf"^(?:async\s+)?def\s+{re.escape(name)}\s*\("
    else:
        suite, dot, test = name.partition(".")
        if not dot or not suite or not test:
            return f"{name!r} is not Suite.Test"
        pattern = rf"^TEST(?:_F|_P)?\(\s*{re.escape(suite)}\s*,\s*{re.escape(test)}\s*\)"
    if re.search(pattern, source, re.MULTILINE) is None:
        return f"{path} has no test {name}"
    return None


def test_every_named_test_exists() -> None:
    references = named_tests(DOC.read_text(encoding="utf-8"))
    # The page names well over a hundred tests; far fewer means the pattern stopped matching.
    assert len(references) > 100
    problems = [
        f"{path}::{name}: {reason}"
        for path, name in references
        if (reason := missing_reason(path, name)) is not None
    ]
    assert problems == []


def test_the_page_covers_every_reference_system_and_readme_links_it() -> None:
    text = DOC.read_text(encoding="utf-8")
    for heading in SECTIONS:
        assert heading in text
    sections = re.split(r"^## ", text, flags=re.MULTILINE)[1:]
    assert len(sections) == len(SECTIONS)
    for section in sections:
        assert "| reference name | taskengine name | test(s) | notes |" in section
    assert "(docs/compatibility.md)" in (REPO / "README.md").read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("path", "name", "reason"),
    [
        ("tests/py/test_engine.py", "test_no_such_test", "has no test test_no_such_test"),
        ("tests/py/no_such_file.py", "test_x", "does not exist"),
        ("tests/cpp/scheduler_test.cpp", "Versions.NoSuchTest", "has no test"),
        ("tests/cpp/scheduler_test.cpp", "CompareNumerically", "is not Suite.Test"),
        # A name that only appears inside another test's body is not a test.
        ("tests/py/test_engine.py", "sample_tasks", "has no test sample_tasks"),
    ],
)
def test_the_checker_reports_what_is_missing(path: str, name: str, reason: str) -> None:
    found = missing_reason(path, name)
    assert found is not None and reason in found


def test_the_checker_accepts_real_tests_of_both_languages() -> None:
    assert missing_reason("tests/py/test_engine.py", "test_cancel_waiting_task_and_group") is None
    assert missing_reason("tests/cpp/scheduler_test.cpp", "Versions.CompareNumerically") is None
    assert (
        missing_reason("tests/cpp/store_conformance_test.cpp", "StoreConformance.CancelTaskGroup")
        is None
    )
