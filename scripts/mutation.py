"""A small mutation tester for the pure rules (``hall/domain`` and features' rule modules).

Why not mutmut: mutmut 3 only mutates inside functions, so the module-level transition
tables, labels, regexes and error codes (the most important data in ``hall/domain``) would
never be mutated. This runner mutates the AST of one module at a time, the tables included,
and runs a fast test selection against each mutant in a forked child that imports the mutated
module from memory (nothing in the worktree is ever rewritten).

Usage (see scripts/mutation.sh, which is the documented entry point)::

    python scripts/mutation.py hall/domain/tickets.py [--tests tests/domain ...] [--list]

A mutant is *killed* when the selection fails (or exceeds its CPU-time limit), *survived* when it
passes. A line ending in ``# pragma: no mutate`` is not mutated (use only for code whose
mutants are equivalent by construction, and say why next to it).
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import copy
import importlib.abc
import importlib.util
import json
import os
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PRAGMA = "# pragma: no mutate"

Replace = Callable[[ast.AST], ast.AST | None]


@dataclass(frozen=True)
class Mutant:
    index: int  # position of the node in the walk
    line: int
    description: str
    apply: Replace  # returns the replacement node (None deletes a statement → pass)


# ---------------------------------------------------------------------------- operators

_CMP_SWAP: dict[type[ast.cmpop], list[type[ast.cmpop]]] = {
    ast.Eq: [ast.NotEq],
    ast.NotEq: [ast.Eq],
    ast.Lt: [ast.LtE, ast.Gt],
    ast.LtE: [ast.Lt, ast.GtE],
    ast.Gt: [ast.GtE, ast.Lt],
    ast.GtE: [ast.Gt, ast.LtE],
    ast.In: [ast.NotIn],
    ast.NotIn: [ast.In],
    ast.Is: [ast.IsNot],
    ast.IsNot: [ast.Is],
}
_BIN_SWAP: dict[type[ast.operator], list[type[ast.operator]]] = {
    ast.Add: [ast.Sub],
    ast.Sub: [ast.Add],
    ast.Mult: [ast.Div],
    ast.Div: [ast.Mult],
    ast.FloorDiv: [ast.Div, ast.Mult],
    ast.Mod: [ast.FloorDiv],
    ast.BitOr: [ast.BitAnd],
    ast.BitAnd: [ast.BitOr],
    ast.Pow: [ast.Mult],
}
_NAME_SWAP = {"max": "min", "min": "max", "any": "all", "all": "any"}


def _op_name(op: type) -> str:
    return op.__name__


class _Finder:
    """Walks a module in a fixed order and lists every mutant with the node it replaces."""

    def __init__(self, tree: ast.Module, source_lines: list[str]) -> None:
        self.lines = source_lines
        self.mutants: list[Mutant] = []
        self.enums = self._enum_members(tree)
        # Module- and class-level assignments: "value -> None" there only breaks the import.
        self.top_level = {
            id(s)
            for holder in [tree, *(n for n in ast.walk(tree) if isinstance(n, ast.ClassDef))]
            for s in holder.body  # type: ignore[attr-defined]
        }
        self._count = 0
        for _ in self.walk(tree):
            pass

    @staticmethod
    def _enum_members(tree: ast.Module) -> dict[str, list[str]]:
        """Class name and its aliases (``_S = TicketState``) → member names, for enum classes."""
        members: dict[str, list[str]] = {}
        for node in tree.body:
            if isinstance(node, ast.ClassDef) and any(
                isinstance(b, ast.Attribute) and "Enum" in b.attr for b in node.bases
            ):
                members[node.name] = [
                    t.id
                    for s in node.body
                    if isinstance(s, ast.Assign)
                    for t in s.targets
                    if isinstance(t, ast.Name)
                ]
        for node in tree.body:
            if (
                isinstance(node, ast.Assign)
                and isinstance(node.value, ast.Name)
                and node.value.id in members
            ):
                for t in node.targets:
                    if isinstance(t, ast.Name):
                        members[t.id] = members[node.value.id]
        return members

    # The walk: yields (node, index); the same order on a deep copy of the tree.
    def walk(self, node: ast.AST) -> Iterator[tuple[ast.AST, int]]:
        index = self._count
        self._count += 1
        yield node, index
        if self._skipped(node):
            return
        self._collect(node, index)
        for name, value in ast.iter_fields(node):
            if self._skip_field(node, name):
                continue
            if isinstance(value, list):
                for i, item in enumerate(value):
                    if isinstance(item, ast.AST) and not self._is_docstring(node, name, i):
                        yield from self.walk(item)
            elif isinstance(value, ast.AST):
                yield from self.walk(value)

    def _skipped(self, node: ast.AST) -> bool:
        if isinstance(node, ast.Assert):
            return True  # internal consistency checks, not behaviour
        if (
            isinstance(node, ast.Expr)
            and isinstance(node.value, ast.Constant)
            and isinstance(node.value.value, str)
        ):
            return True  # docstrings, also those of attributes
        line = getattr(node, "lineno", None)
        if line is not None and self.lines[line - 1].rstrip().endswith(PRAGMA):
            return True
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets
        ):
            return True
        return isinstance(node, ast.ImportFrom | ast.Import)

    @staticmethod
    def _skip_field(node: ast.AST, name: str) -> bool:
        if name in ("annotation", "returns", "decorator_list", "type_comment"):
            return True
        if isinstance(node, ast.FormattedValue) and name == "format_spec":
            return True
        return isinstance(node, ast.Raise) and name == "cause"

    @staticmethod
    def _is_docstring(node: ast.AST, name: str, i: int) -> bool:
        if name != "body" or i != 0:
            return False
        if not isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            return False
        body = node.body
        return (
            isinstance(body[0], ast.Expr)
            and isinstance(body[0].value, ast.Constant)
            and isinstance(body[0].value.value, str)
        )

    def _add(self, index: int, node: ast.AST, description: str, apply: Replace) -> None:
        line = getattr(node, "lineno", 0)
        self.mutants.append(Mutant(index, line, description, apply))

    def _collect(self, node: ast.AST, index: int) -> None:
        add = self._add
        if isinstance(node, ast.Compare):
            for i, op in enumerate(node.ops):
                for new in _CMP_SWAP.get(type(op), []):

                    def f(n: ast.AST, i: int = i, new: type = new) -> ast.AST:
                        assert isinstance(n, ast.Compare)
                        n.ops[i] = new()
                        return n

                    add(index, node, f"{_op_name(type(op))} -> {_op_name(new)}", f)
        elif isinstance(node, ast.BinOp):
            for new in _BIN_SWAP.get(type(node.op), []):

                def f(n: ast.AST, new: type = new) -> ast.AST:
                    assert isinstance(n, ast.BinOp)
                    n.op = new()
                    return n

                add(index, node, f"{_op_name(type(node.op))} -> {_op_name(new)}", f)
        elif isinstance(node, ast.AugAssign):
            for new in _BIN_SWAP.get(type(node.op), []):

                def f(n: ast.AST, new: type = new) -> ast.AST:
                    assert isinstance(n, ast.AugAssign)
                    n.op = new()
                    return n

                add(index, node, f"{_op_name(type(node.op))}= -> {_op_name(new)}=", f)

            def plain(n: ast.AST) -> ast.AST:
                assert isinstance(n, ast.AugAssign)
                return ast.Assign(targets=[n.target], value=n.value, lineno=n.lineno)

            add(index, node, "op= -> =", plain)
        elif isinstance(node, ast.BoolOp):
            new_op = ast.Or if isinstance(node.op, ast.And) else ast.And

            def f(n: ast.AST, new_op: type = new_op) -> ast.AST:
                assert isinstance(n, ast.BoolOp)
                n.op = new_op()
                return n

            add(index, node, f"{type(node.op).__name__} -> {new_op.__name__}", f)
        elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not | ast.USub):
            add(index, node, f"drop {type(node.op).__name__}", lambda n: n.operand)  # type: ignore[attr-defined]
        elif isinstance(node, ast.Constant):
            v = node.value
            if isinstance(v, bool):
                add(index, node, f"{v} -> {not v}", lambda n, v=v: ast.Constant(not v))
            elif isinstance(v, int | float):
                add(index, node, f"{v!r} -> {v + 1!r}", lambda n, v=v: ast.Constant(v + 1))
                if v != 0:
                    add(index, node, f"{v!r} -> 0", lambda n, v=v: ast.Constant(type(v)(0)))
            elif isinstance(v, str):
                add(index, node, f"{v!r} -> 'XX…XX'", lambda n, v=v: ast.Constant(f"XX{v}XX"))
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load):
            if node.id in _NAME_SWAP:
                new_id = _NAME_SWAP[node.id]
                add(
                    index,
                    node,
                    f"{node.id} -> {new_id}",
                    lambda n, s=new_id: ast.Name(s, ast.Load()),
                )
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            members = self.enums.get(node.value.id)
            if members and node.attr in members and len(members) > 1:
                other = members[(members.index(node.attr) + 1) % len(members)]

                def f(n: ast.AST, other: str = other) -> ast.AST:
                    assert isinstance(n, ast.Attribute)
                    n.attr = other
                    return n

                add(index, node, f"{node.value.id}.{node.attr} -> {other}", f)
        elif isinstance(node, ast.Set):
            names = [
                e.value.id
                for e in node.elts
                if isinstance(e, ast.Attribute) and isinstance(e.value, ast.Name)
            ]
            for i in range(len(node.elts)):

                def drop(n: ast.AST, i: int = i) -> ast.AST:
                    assert isinstance(n, ast.Set)
                    del n.elts[i]
                    if not n.elts:
                        return ast.Call(ast.Name("set", ast.Load()), [], [])
                    return n

                add(index, node, f"set: drop element {i}", drop)
            if names and len(names) == len(node.elts) and len(set(names)) == 1:
                alias = names[0]
                present = {e.attr for e in node.elts if isinstance(e, ast.Attribute)}
                for member in self.enums.get(alias, []):
                    if member in present:
                        continue

                    def extra(n: ast.AST, member: str = member, alias: str = alias) -> ast.AST:
                        assert isinstance(n, ast.Set)
                        n.elts.append(
                            ast.Attribute(ast.Name(alias, ast.Load()), member, ast.Load())
                        )
                        return n

                    add(index, node, f"set: add {alias}.{member}", extra)
        elif isinstance(node, ast.Dict):
            for i, key in enumerate(node.keys):
                label = ast.unparse(key) if key is not None else "**"

                def drop(n: ast.AST, i: int = i) -> ast.AST:
                    assert isinstance(n, ast.Dict)
                    del n.keys[i]
                    del n.values[i]
                    return n

                add(index, node, f"dict: drop {label}", drop)
        elif isinstance(node, ast.Call):
            for i, kw in enumerate(node.keywords):

                def drop(n: ast.AST, i: int = i) -> ast.AST:
                    assert isinstance(n, ast.Call)
                    del n.keywords[i]
                    return n

                add(index, node, f"call: drop {kw.arg or '**'}=", drop)
            if len(node.args) >= 2 and not any(isinstance(a, ast.Starred) for a in node.args):

                def drop_last(n: ast.AST) -> ast.AST:
                    assert isinstance(n, ast.Call)
                    n.args.pop()
                    return n

                add(index, node, "call: drop last argument", drop_last)
        elif isinstance(node, ast.Return) and node.value is not None:
            if not (isinstance(node.value, ast.Constant) and node.value.value is None):
                add(index, node, "return None", lambda n: ast.Return(ast.Constant(None)))
        elif isinstance(node, ast.Assign | ast.AnnAssign) and node.value is not None:
            if id(node) not in self.top_level and not (
                isinstance(node.value, ast.Constant) and node.value.value is None
            ):

                def none(n: ast.AST) -> ast.AST:
                    assert isinstance(n, ast.Assign | ast.AnnAssign)
                    n.value = ast.Constant(None)
                    return n

                add(index, node, "value -> None", none)
        elif isinstance(node, ast.Expr) and isinstance(node.value, ast.Call | ast.Await):
            add(index, node, "drop statement", lambda n: None)
        elif isinstance(node, ast.Raise):
            add(index, node, "drop raise", lambda n: None)
        elif isinstance(node, ast.Break):
            add(index, node, "break -> continue", lambda n: ast.Continue())
        elif isinstance(node, ast.Continue):
            add(index, node, "continue -> break", lambda n: ast.Break())


def find_mutants(source: str) -> tuple[ast.Module, list[Mutant]]:
    tree = ast.parse(source)
    finder = _Finder(tree, source.splitlines())
    return tree, finder.mutants


def mutated_tree(tree: ast.Module, mutant: Mutant, source: str) -> ast.Module:
    copy_ = copy.deepcopy(tree)
    finder = _Finder.__new__(_Finder)
    finder.lines = source.splitlines()
    finder.mutants = []
    finder.enums = {}
    finder._count = 0
    # Walk the copy in the same order, remember each node's parent slot.
    parents: dict[int, tuple[ast.AST, str, int | None]] = {}
    target: ast.AST | None = None
    for node, index in _walk_plain(finder, copy_, parents):
        if index == mutant.index:
            target = node
            break
    assert target is not None
    parent, field, pos = parents[id(target)]
    new = mutant.apply(target)
    if new is None:
        new = ast.Pass()
    if pos is None:
        setattr(parent, field, new)
    else:
        getattr(parent, field)[pos] = new
    ast.fix_missing_locations(copy_)
    return copy_


def _walk_plain(
    finder: _Finder, root: ast.AST, parents: dict[int, tuple[ast.AST, str, int | None]]
) -> Iterator[tuple[ast.AST, int]]:
    """The same order as ``_Finder.walk`` (without collecting), recording parents."""

    def rec(node: ast.AST) -> Iterator[tuple[ast.AST, int]]:
        index = finder._count
        finder._count += 1
        yield node, index
        if finder._skipped(node):
            return
        for name, value in ast.iter_fields(node):
            if finder._skip_field(node, name):
                continue
            if isinstance(value, list):
                for i, item in enumerate(value):
                    if isinstance(item, ast.AST) and not finder._is_docstring(node, name, i):
                        parents[id(item)] = (node, name, i)
                        yield from rec(item)
            elif isinstance(value, ast.AST):
                parents[id(value)] = (node, name, None)
                yield from rec(value)

    yield from rec(root)


# ---------------------------------------------------------------------------- running


class _MutantFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Serves one module from a code object compiled from the mutated tree."""

    def __init__(self, name: str, path: Path, code: Any) -> None:
        self.name, self.path, self.code = name, path, code

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        if fullname != self.name:
            return None
        return importlib.util.spec_from_file_location(fullname, self.path, loader=self)

    def create_module(self, spec: Any) -> None:
        return None

    def exec_module(self, module: ModuleType) -> None:
        exec(self.code, module.__dict__)


def _module_name(path: Path, base: Path) -> str:
    rel = path.resolve().relative_to(base).with_suffix("")
    return ".".join(rel.parts)


def _run_child(pytest_args: list[str], module: str | None, path: Path, code: Any) -> int:
    """Fork; the child imports the project fresh (with the mutant) and runs pytest quietly."""
    pid = os.fork()
    if pid == 0:  # child
        try:
            os.setpgid(0, 0)
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 1)
            os.dup2(devnull, 2)
            for name in [m for m in sys.modules if m.split(".")[0] in _PROJECT_PACKAGES]:
                del sys.modules[name]
            if module is not None:
                sys.meta_path.insert(0, _MutantFinder(module, path, code))
            import pytest

            rc = pytest.main(pytest_args)
            os._exit(int(rc))
        except BaseException:  # anything in the child is a failing run
            os._exit(99)
    return pid


_PROJECT_PACKAGES = {
    "hall",
    "tests",
    "kiosk",
    "counters",
    "display",
    "evaluator",
    "firmware_bridge",
}


@dataclass(frozen=True)
class Limit:
    """How long one phase may run: CPU seconds (what a looping mutant burns; a loaded machine
    stretches wall time, not the CPU time a run needs) and a generous wall-clock cap for a
    mutant that hangs without burning CPU."""

    cpu_s: float
    wall_s: float


_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a running child (Linux /proc), 0 when it cannot be read."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS  # utime, stime (fields 14, 15)


def _wait(pid: int, limit: Limit) -> tuple[int | None, float, float]:
    """Exit code (None when stopped at the limit), CPU seconds and wall seconds taken."""
    start = time.monotonic()
    while True:
        done, status, usage = os.wait4(pid, os.WNOHANG)
        wall = time.monotonic() - start
        if done:
            return os.waitstatus_to_exitcode(status), usage.ru_utime + usage.ru_stime, wall
        cpu = _cpu_seconds(pid)
        if cpu > limit.cpu_s or wall > limit.wall_s:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            return None, cpu, wall
        time.sleep(0.02)


def _test_files(selection: Sequence[str], base: Path) -> list[str]:
    """Test files of the selection."""
    files: list[str] = []
    for item in selection:
        p = base / item.split("::")[0]
        if p.is_dir():
            files.extend(str(f.relative_to(base)) for f in sorted(p.rglob("test_*.py")))
        else:
            files.append(item)
    return files


def _preimport() -> None:
    """Import heavy third-party modules once, before forking (the project itself is not)."""
    import pytest  # noqa: F401

    for name in ("hypothesis", "aiohttp", "asyncpg", "pydantic", "zoneinfo", "pytest_asyncio"):
        with contextlib.suppress(ImportError):
            __import__(name)
    # The installed pytest plugins too (pytest loads them by entry point in every child):
    # schemathesis's alone took about 1 s of CPU per child, most of a killed mutant's cost.
    from importlib.metadata import entry_points

    for ep in entry_points(group="pytest11"):
        with contextlib.suppress(Exception):
            ep.load()
    from hypothesis import settings

    # Deterministic examples and no deadline: a loaded machine must not "kill" a mutant.
    settings.register_profile("mutation", derandomize=True, deadline=None, database=None)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="+", help="modules to mutate, e.g. hall/domain/tickets.py")
    parser.add_argument("--tests", nargs="+", default=["tests/domain"], help="test selection")
    parser.add_argument("--list", action="store_true", help="list the mutants and stop")
    parser.add_argument("--only", type=int, nargs="*", help="run only these mutant numbers")
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument("--timeout-factor", type=float, default=3.0)
    parser.add_argument(
        "--cpu-limits",
        type=float,
        nargs=2,
        metavar=("OWN", "REST"),
        help="CPU seconds per phase instead of measuring the unmutated runs (e.g. with --only)",
    )
    parser.add_argument(
        "--min-limit", type=float, default=5.0, help="least CPU seconds a phase may use"
    )
    parser.add_argument(
        "--pytest-args", nargs=argparse.REMAINDER, default=[], help="more pytest options (last)"
    )
    args = parser.parse_args(argv)

    # Run against a snapshot: editing the worktree while a run goes on (a new test, a fix)
    # must not change the verdict on the mutants still to come.
    if args.json is not None:
        args.json = args.json.resolve()
    snapshot = Path(tempfile.mkdtemp(prefix="hall-mutation-"))
    base = snapshot / "src"
    shutil.copytree(ROOT, base, ignore=shutil.ignore_patterns(*_NOT_COPIED))
    os.chdir(base)
    sys.path.insert(0, str(base))
    _preimport()
    try:
        return _run(args, base)
    finally:
        os.chdir(ROOT)
        shutil.rmtree(snapshot, ignore_errors=True)


_NOT_COPIED = (".git", ".venv", ".mutation", "__pycache__", ".hypothesis", ".*_cache", "bench")


def _run(args: argparse.Namespace, base: Path) -> int:
    results: dict[str, dict[str, Any]] = {}
    total_killed = total = 0
    for file in args.files:
        path = (base / file).resolve()
        source = path.read_text(encoding="utf-8")
        tree, mutants = find_mutants(source)
        module = _module_name(path, base)
        if args.list:
            for n, m in enumerate(mutants, 1):
                print(f"{file}:{m.line} #{n} {m.description}")
            continue
        stem = path.stem
        tests = _test_files(args.tests, base)
        own = [t for t in tests if Path(t).name in (f"test_{stem}.py",)]
        others = [t for t in tests if t not in own]
        options = [
            "-x",
            "-q",
            "-p",
            "no:cacheprovider",
            "--hypothesis-profile=mutation",
            # No per-test timeout: on a loaded machine it would "kill" mutants; the runner's
            # own limit per run catches mutants that loop.
            "-p",
            "no:timeout",
            *args.pytest_args,
        ]
        # Two phases: the module's own tests kill most mutants in a fraction of the time; a
        # mutant they miss then meets the rest of the selection.
        phases = [[*options, *own], [*options, *others]] if own and others else [[*options, *tests]]
        # Each phase has its own time limit, a multiple of its unmutated time: a mutant that
        # loops (a dropped `day += 1`) is stopped after seconds, not after the whole
        # selection's budget, which made slow files like calendar.py take hours.
        limits: list[Limit] = []
        measured: list[str] = []
        for phase in phases:
            rc, cpu, wall = 0, 60.0, 60.0
            if args.cpu_limits:  # given: the unmutated CPU times of earlier runs
                cpu = wall = args.cpu_limits[len(limits)] / args.timeout_factor
            elif not args.only:  # a re-check of a few mutants trusts the selection passes
                pid = _run_child(phase, None, path, None)
                rc, cpu, wall = _wait(pid, Limit(3600.0, 3600.0))
            if rc != 0:
                print(f"{file}: the unmutated test selection fails (exit {rc}); fix that first")
                return 2
            limits.append(
                Limit(
                    cpu_s=max(args.min_limit, cpu * args.timeout_factor),
                    wall_s=max(300.0, wall * 10 * args.timeout_factor),
                )
            )
            measured.append(f"{cpu:.1f}s CPU ({wall:.1f}s wall)")
        baseline = ", ".join(measured)
        print(f"{file}: {len(mutants)} mutants, baseline per phase {baseline}", flush=True)
        survived: list[dict[str, Any]] = []
        killed = timeouts = 0
        for n, m in enumerate(mutants, 1):
            if args.only and n not in args.only:
                continue
            try:
                code = compile(mutated_tree(tree, m, source), str(path), "exec")
            except (SyntaxError, ValueError, TypeError):
                killed += 1  # does not even compile: any import kills it
                continue
            for phase, limit in zip(phases, limits, strict=True):
                pid = _run_child(phase, module, path, code)
                rc, _, _ = _wait(pid, limit)
                if rc != 0:
                    break
            if n % 25 == 0:
                print(f"  … {n}/{len(mutants)}, {len(survived)} survived so far", flush=True)
            if rc is None:
                timeouts += 1
                killed += 1
                # Listed, so that a run on a loaded machine can be audited: a mutant stopped
                # by its limit is counted as killed.
                print(f"  stopped by its limit #{n} line {m.line}: {m.description}", flush=True)
            elif rc == 0:
                survived.append({"n": n, "line": m.line, "mutation": m.description})
                line_text = source.splitlines()[m.line - 1].strip() if m.line else ""
                print(f"  survived #{n} line {m.line}: {m.description}   | {line_text}", flush=True)
            elif rc == 5:
                print(f"  no tests collected for #{n}?", flush=True)
                return 2
            else:
                killed += 1
        ran = killed + len(survived)
        score = 100.0 * killed / ran if ran else 100.0
        print(
            f"SCORE {file}: {score:.1f}% ({killed}/{ran} killed, {timeouts} by timeout,"
            f" {len(survived)} survived)",
            flush=True,
        )
        results[file] = {
            "mutants": ran,
            "killed": killed,
            "timeouts": timeouts,
            "score": round(score, 1),
            "survived": survived,
        }
        total += ran
        total_killed += killed
    if args.json:
        args.json.write_text(json.dumps(results, ensure_ascii=False, indent=2), encoding="utf-8")
    if total and len(args.files) > 1:
        print(f"SCORE total: {100.0 * total_killed / total:.1f}% ({total_killed}/{total})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
