"""Type-check the MicroPython code (protocol/, firmware/) against what MicroPython really has.

    python scripts/check_micropython_types.py [path ...]     (default: protocol firmware)

Strategy. mypy checks stdlib use against typeshed; micropython-stdlib-stubs is a reduced copy
of typeshed meant to *replace* it (mypy --custom-typeshed-dir), and micropython-unix-stubs
adds the port's own modules (time.ticks_ms, micropython.const, machine, ...). Installed into
the venv they are just files in site-packages, so this script assembles them into a typeshed
tree (stdlib/ + stubs/ + VERSIONS) under build/.

That alone catches missing *modules* (dataclasses, functools, itertools) but not
missing *attributes*: the stdlib copy still describes CPython's int.bit_length, str.ljust,
sys.getsizeof, struct.Struct, FileNotFoundError. So before mypy runs, the CPython-derived
stubs are intersected with the real interpreter: the MicroPython unix port from the venv
(the same one the portable tests run on) is asked which of the stubbed public names exist,
and the rest are cut out of the stubs. The port's own stubs are MicroPython-authored and
kept as they are.

An import the stubs cannot judge is checked by the interpreter too: typing, abc, enum and
collections.abc stay in the typeshed because the stubs need them, so an import of one (or of
this repository's CPython-side packages) is reported unless it is guarded by
``try: ... except ImportError`` or ``if TYPE_CHECKING:``.

mypy runs with --check-untyped-defs, since the code is untyped MicroPython-style and mypy
would otherwise skip every function body, and the check fails only on what says "MicroPython
does not have this" (AVAILABILITY_CODES). mypy's other findings in untyped code are about
inferred types; they are counted, and shown with --all.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterable, Iterator
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_TARGETS = ("protocol", "firmware")
DEFAULT_WORK_DIR = ROOT / "build" / "micropython-typeshed"

STDLIB_DIST = "micropython-stdlib-stubs"  # typeshed layout: stdlib/, stubs/, _mpy_shed/
PORT_DIST = "micropython-unix-stubs"  # flat .pyi files and packages for the port's modules

# Project packages that exist on the device; imports of them are not asked of the interpreter.
LOCAL_PACKAGES = frozenset({"protocol", "firmware", "hardware"})

# builtins.pyi classes whose public members are checked on a sample instance (instance
# lookup also finds properties such as int.real, which dir() of a type does not list).
VALUE_SAMPLES = {
    "int": "0",
    "bool": "True",
    "float": "0.0",
    "complex": "1j",
    "str": "''",
    "bytes": "b''",
    "bytearray": "bytearray()",
    "memoryview": "memoryview(b'')",
    "list": "[]",
    "tuple": "()",
    "dict": "{}",
    "set": "set()",
    "frozenset": "frozenset()",
    "range": "range(0)",
    "object": "object()",
    "BaseException": "BaseException()",
}

# Written into each pruned definition's place, so the stub stays valid Python.
PRUNED = "...  # pruned: not in MicroPython"
# A member the class must keep because a base declares it abstract (bytearray.insert for
# MutableSequence): deleting it would make the class abstract, so it becomes an attribute of
# a type that cannot be called or used, and any use reads `"_NotInMicroPython" not callable`.
NOT_IN_MICROPYTHON = "_NotInMicroPython"
MARKER_CLASS = f"\nclass {NOT_IN_MICROPYTHON}: ...  # marks pruned abstract members\n"

ProbeRequest = dict[str, tuple[str, list[str]]]


# ---------------------------------------------------------------------------- typeshed


def _dist_files(dist: str) -> Iterator[tuple[str, Path]]:
    """(path relative to site-packages, absolute path) of every .pyi the distribution installs."""
    try:
        files = metadata.distribution(dist).files or []
    except metadata.PackageNotFoundError:
        raise SystemExit(f"{dist} is not installed: run `uv sync` (dev group)") from None
    for f in files:
        if f.suffix == ".pyi":
            yield f.as_posix(), Path(str(f.locate()))


def _module_name(rel: str) -> str:
    """'asyncio/__init__.pyi' -> 'asyncio', 'os/path.pyi' -> 'os.path'."""
    parts = rel.removesuffix(".pyi").split("/")
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def assemble(work: Path) -> tuple[Path, dict[str, Path]]:
    """Build the typeshed tree; return it and {module: stub} for the CPython-derived stdlib."""
    typeshed = work / "typeshed"
    if typeshed.exists():
        shutil.rmtree(typeshed)
    stdlib = typeshed / "stdlib"
    derived: dict[str, Path] = {}
    extra_modules: set[str] = set()
    for rel, src in _dist_files(STDLIB_DIST):
        if rel.startswith("stdlib/"):
            dest = typeshed / rel
            derived[_module_name(rel.removeprefix("stdlib/"))] = dest
        elif rel.startswith("stubs/"):
            dest = typeshed / rel  # mypy_extensions, which mypy itself imports
        else:
            dest = stdlib / rel  # _mpy_shed: helper types the port stubs import
            extra_modules.add(rel.split("/")[0].removesuffix(".pyi"))
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dest)
    for rel, src in _dist_files(PORT_DIST):
        if rel == "__builtins__.pyi":
            continue  # a Pylance-only way to add builtins; mypy has none
        dest = stdlib / rel
        if dest.exists():
            raise SystemExit(f"{PORT_DIST} and {STDLIB_DIST} both provide {rel}")
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dest)
        extra_modules.add(rel.split("/")[0].removesuffix(".pyi"))
    with (stdlib / "VERSIONS").open("a") as versions:
        versions.write("\n# MicroPython port modules (added by check_micropython_types.py)\n")
        for name in sorted(extra_modules):
            versions.write(f"{name}: 3.0-\n")
    return typeshed, derived


# ---------------------------------------------------------------------------- interpreter


def micropython() -> str:
    exe = shutil.which("micropython", path=str(Path(sys.executable).parent)) or shutil.which(
        "micropython"
    )
    if exe is None:
        raise SystemExit("the micropython command is missing: run `uv sync`")
    return exe


_PROBE = """
import json
out = {}
for key, (expr, names) in REQUEST.items():
    try:
        obj = eval(expr, NS)
    except Exception:
        out[key] = None
        continue
    out[key] = [n for n in names if hasattr(obj, n)]
print(json.dumps(out))
"""


def probe(request: ProbeRequest) -> dict[str, list[str] | None]:
    """Evaluate each expression under MicroPython; return which of its names exist (None:
    the expression itself failed, e.g. the module cannot be imported)."""
    lines = ["NS = {}"]
    modules = sorted({expr.split(".")[0] for expr, _ in request.values() if expr[0].isalpha()})
    for m in modules:
        lines.append(f"try:\n    NS[{m!r}] = __import__({m!r})\nexcept ImportError:\n    pass")
    lines.append(f"REQUEST = {request!r}")
    program = "\n".join(lines) + _PROBE
    env = {k: v for k, v in os.environ.items() if k != "MICROPYPATH"}
    result = subprocess.run(
        [micropython(), "-c", program], capture_output=True, text=True, env=env, timeout=60
    )
    if result.returncode != 0:
        raise SystemExit("probing MicroPython failed:\n" + result.stdout + result.stderr)
    answer: dict[str, list[str] | None] = json.loads(result.stdout)
    return answer


def importable(names: Iterable[str]) -> set[str]:
    """The dotted module names the interpreter can import."""
    names = sorted(set(names))
    program = (
        "import json\nok = []\n"
        f"for n in {names!r}:\n"
        "    try:\n        __import__(n)\n        ok.append(n)\n"
        "    except ImportError:\n        pass\n"
        "print(json.dumps(ok))\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "MICROPYPATH"}
    result = subprocess.run(
        [micropython(), "-c", program], capture_output=True, text=True, env=env, timeout=60
    )
    if result.returncode != 0:
        raise SystemExit("probing MicroPython failed:\n" + result.stdout + result.stderr)
    return set(json.loads(result.stdout))


# ---------------------------------------------------------------------------- pruning


def _defined_name(node: ast.stmt) -> str | None:
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
        return node.name
    if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
        return node.target.id
    if isinstance(node, ast.Assign) and len(node.targets) == 1:
        target = node.targets[0]
        if isinstance(target, ast.Name):
            return target.id
    return None


def _definitions(body: list[ast.stmt]) -> Iterator[tuple[str, ast.stmt]]:
    """Named definitions in a block, looking into `if sys.version_info ...` branches."""
    for node in body:
        if isinstance(node, ast.If):
            yield from _definitions(node.body)
            yield from _definitions(node.orelse)
        else:
            name = _defined_name(node)
            if name is not None:
                yield name, node


def _public(name: str) -> bool:
    return not name.startswith("_")


def _exception_classes(tree: ast.Module) -> set[str]:
    """Classes in builtins.pyi that derive from BaseException."""
    bases: dict[str, list[str]] = {}
    for name, node in _definitions(tree.body):
        if isinstance(node, ast.ClassDef):
            bases[name] = [b.id for b in node.bases if isinstance(b, ast.Name)]
    found = {"BaseException"}
    changed = True
    while changed:
        changed = False
        for name, parents in bases.items():
            if name not in found and found.intersection(parents):
                found.add(name)
                changed = True
    return found


def _abstract_names(trees: dict[str, ast.Module]) -> set[str]:
    """Public methods the typing ABCs declare abstract (MutableSequence.insert, IO.read...)."""
    names = set()
    for mod in ("typing", "_collections_abc"):
        for node in ast.walk(trees.get(mod) or ast.Module(body=[], type_ignores=[])):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and _public(node.name):
                for d in node.decorator_list:
                    if (isinstance(d, ast.Name) and d.id == "abstractmethod") or (
                        isinstance(d, ast.Attribute) and d.attr == "abstractmethod"
                    ):
                        names.add(node.name)
    return names


def _cut(text: str, cuts: list[tuple[ast.stmt, str]]) -> str:
    """Replace each node (with its decorators) by its one-line replacement, same indentation."""
    lines = text.splitlines()
    spans = []
    for node, replacement in cuts:
        first = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
        spans.append((first, node.end_lineno or node.lineno, node.col_offset, replacement))
    for first, last, col, replacement in sorted(spans, reverse=True):
        lines[first - 1 : last] = [" " * col + replacement]
    return "\n".join(lines) + "\n"


def _runtime_owner(mod: str, trees: dict[str, ast.Module]) -> str | None:
    """The MicroPython module whose namespace holds a stub module's names: itself, or for a
    submodule that its package star-imports (asyncio/tasks.pyi), the package. Other
    submodules (collections.abc) have no MicroPython counterpart and are left alone."""
    if "." not in mod:
        return mod
    package, _, sub = mod.rpartition(".")
    init = trees.get(package)
    if init is None:
        return None
    for node in ast.walk(init):
        if (
            isinstance(node, ast.ImportFrom)
            and node.level == 1
            and node.module == sub
            and any(a.name == "*" for a in node.names)
        ):
            return package if "." not in package else None
    return None


def _public_members(node: ast.ClassDef) -> list[str]:
    return sorted({m for m, _ in _definitions(node.body) if _public(m)})


def _probe_request(trees: dict[str, ast.Module]) -> ProbeRequest:
    """What to ask the interpreter: each stub module's public names, each stub class's
    public members, and the members of builtin value types (on a sample instance)."""
    request: ProbeRequest = {}
    for mod, tree in trees.items():
        owner = _runtime_owner(mod, trees)
        if mod == "builtins" or owner is None:
            continue
        defs = list(_definitions(tree.body))
        request["module:" + mod] = (owner, sorted({n for n, _ in defs if _public(n)}))
        for name, node in defs:
            if isinstance(node, ast.ClassDef) and _public(name):
                request[f"class:{mod}:{name}"] = (f"{owner}.{name}", _public_members(node))
    builtins = list(_definitions(trees["builtins"].body))
    request["module:builtins"] = ("builtins", sorted({n for n, _ in builtins}))
    for name, node in builtins:
        if isinstance(node, ast.ClassDef) and name in VALUE_SAMPLES:
            request[f"value:{name}"] = (VALUE_SAMPLES[name], _public_members(node))
    return request


def _prunable(mod: str, node: ast.stmt, exceptions: set[str]) -> bool:
    """Whether a missing top-level name may be cut. In builtins only functions and
    exception classes: mypy itself needs the core classes and constants."""
    if mod != "builtins":
        return True
    if isinstance(node, ast.ClassDef):
        return node.name in exceptions
    return isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)


def prune(derived: dict[str, Path]) -> dict[str, list[str]]:
    """Cut from the CPython-derived stubs what the interpreter lacks; return what was cut."""
    trees = {mod: ast.parse(path.read_text(), str(path)) for mod, path in derived.items()}
    found = probe(_probe_request(trees))
    exceptions = _exception_classes(trees["builtins"])
    abstract = _abstract_names(trees)
    removed: dict[str, list[str]] = {}
    for mod, tree in trees.items():
        present = found.get("module:" + mod)
        if present is None:
            continue  # not importable (typing, abc, enum...): the import rule reports users
        cuts: list[tuple[ast.stmt, str]] = []
        names: list[str] = []
        for name, node in _definitions(tree.body):
            if not _public(name):
                continue
            if name not in present:
                if _prunable(mod, node, exceptions):
                    cuts.append((node, PRUNED))
                    names.append(name)
                continue
            if not isinstance(node, ast.ClassDef):
                continue
            key = f"value:{name}" if mod == "builtins" else f"class:{mod}:{name}"
            members = found.get(key)
            if members is None:
                continue
            for m, member in _definitions(node.body):
                if _public(m) and m not in members:
                    line = f"{m}: {NOT_IN_MICROPYTHON}  # pruned" if m in abstract else PRUNED
                    cuts.append((member, line))
                    names.append(f"{name}.{m}")
        if cuts:
            text = _cut(derived[mod].read_text(), cuts)
            if mod == "builtins":
                text += MARKER_CLASS
            else:
                text += f"from builtins import {NOT_IN_MICROPYTHON}\n"
            ast.parse(text, str(derived[mod]))  # still valid Python, or fail loudly here
            derived[mod].write_text(text)
            removed[mod] = sorted(set(names))
    return removed


# ---------------------------------------------------------------------------- import rule


def _guarded_try(node: ast.Try) -> bool:
    for handler in node.handlers:
        kinds = handler.type
        if kinds is None:
            return True
        elts = kinds.elts if isinstance(kinds, ast.Tuple) else [kinds]
        if any(isinstance(e, ast.Name) and e.id in ("ImportError", "Exception") for e in elts):
            return True
    return False


def _type_checking_only(node: ast.If) -> bool:
    test = node.test
    if isinstance(test, ast.Constant) and test.value is False:
        return True
    if isinstance(test, ast.Name) and test.id == "TYPE_CHECKING":
        return True
    return isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"


def _imports(body: list[ast.stmt]) -> Iterator[tuple[int, str]]:
    """(line, module) of every unguarded absolute import, at any depth."""
    for node in body:
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0 and node.module:
                yield node.lineno, node.module
        elif isinstance(node, ast.Try):
            if not _guarded_try(node):
                yield from _imports(node.body)
            for handler in node.handlers:
                yield from _imports(handler.body)
            yield from _imports(node.orelse)
            yield from _imports(node.finalbody)
        elif isinstance(node, ast.If):
            if not _type_checking_only(node):
                yield from _imports(node.body)
            yield from _imports(node.orelse)
        else:
            for field in ("body", "orelse", "finalbody", "handlers", "cases"):
                block = getattr(node, field, None)
                if isinstance(block, list):
                    yield from _imports([s for s in block if isinstance(s, ast.stmt)])
                    for sub in block:
                        if isinstance(sub, ast.ExceptHandler | ast.match_case):
                            yield from _imports(sub.body)


def python_files(targets: Iterable[Path]) -> list[Path]:
    files: list[Path] = []
    for t in targets:
        if t.is_dir():
            files.extend(sorted(p for p in t.rglob("*.py") if "__pycache__" not in p.parts))
        elif t.suffix == ".py":
            files.append(t)
    return files


def _project_packages() -> set[str]:
    """Top-level packages of this repository (edge_agent, hub, ...)."""
    return {p.parent.name for p in ROOT.glob("*/__init__.py")}


def check_imports(files: list[Path], stubbed: set[str]) -> list[str]:
    """Report imports MicroPython cannot satisfy that mypy would let pass: modules the
    typeshed has only for the stubs' sake, and this repository's CPython-only packages
    (mypy finds those in the working directory). Returns `path:line: error:` lines."""
    cpython_side = _project_packages() - LOCAL_PACKAGES
    uses: list[tuple[Path, int, str]] = []
    for path in files:
        tree = ast.parse(path.read_text(), str(path))
        for line, module in _imports(tree.body):
            top = module.split(".")[0]
            if top in cpython_side or (top not in LOCAL_PACKAGES and module in stubbed):
                uses.append((path, line, module))
    ok = importable(m for _, _, m in uses)
    errors = []
    for path, line, module in uses:
        if module.split(".")[0] in cpython_side:
            why = "it is CPython-side; device code must not import it (DESIGN.md dependencies)"
        elif module not in ok:
            why = "guard it with try/except ImportError or if TYPE_CHECKING"
        else:
            continue
        errors.append(
            f"{_show(path)}:{line}: error: MicroPython cannot import {module!r} ({why})"
            "  [mpy-import]"
        )
    return errors


def _show(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


# ---------------------------------------------------------------------------- main


# mypy error codes that say "MicroPython does not have this" (with the pruned typeshed):
# a module, a name, an attribute, a signature. Everything else mypy finds in untyped code is
# about inferred types (an isinstance result kept in a variable, a name reused for a list
# and a dict, None set in __init__), which the CPython tests cover; --all shows it.
AVAILABILITY_CODES = frozenset(
    {"import-not-found", "import", "attr-defined", "name-defined", "call-arg"}
)
_MYPY_LINE = re.compile(
    r"^(?P<where>.+?:\d+): (?P<level>error|note): (?P<msg>.*?)(?:  \[(?P<code>[a-z-]+)\])?$"
)
_MISSING_ATTR = re.compile(r'has no attribute "(?P<name>\w+)"')


class Finding:
    def __init__(self, line: str, code: str | None, message: str) -> None:
        self.lines = [line]
        self.code = code
        self.message = message

    def about_micropython(self, pruned: set[str]) -> bool:
        if NOT_IN_MICROPYTHON in self.message or self.code in AVAILABILITY_CODES:
            return True
        # `x.bit_length()` on an int | str: only a name cut from the stubs counts
        missing = _MISSING_ATTR.search(self.message)
        return self.code == "union-attr" and missing is not None and missing["name"] in pruned


def parse_mypy(output: str) -> list[Finding]:
    findings: list[Finding] = []
    for line in output.splitlines():
        m = _MYPY_LINE.match(line)
        if m is None:
            continue
        if m["level"] == "error":
            findings.append(Finding(line, m["code"], m["msg"]))
        elif findings:
            findings[-1].lines.append(line)  # a note belongs to the error before it
    return findings


def run_mypy(targets: list[Path], typeshed: Path, work: Path) -> list[Finding]:
    command = [
        sys.executable,
        "-m",
        "mypy",
        "--config-file=",  # not [tool.mypy]: that is the strict CPython configuration
        f"--custom-typeshed-dir={typeshed}",
        f"--cache-dir={work / 'mypy-cache'}",
        "--no-site-packages",  # nothing from the CPython venv exists on the device
        "--check-untyped-defs",  # the code is unannotated; check the bodies anyway
        # fewer findings about inferred types in untyped code (see AVAILABILITY_CODES)
        "--no-strict-optional",
        "--allow-redefinition",
        "--disable-error-code=var-annotated",
        "--show-error-codes",
        "--no-pretty",
        "--no-error-summary",
        *[str(t) for t in targets],
    ]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    findings = parse_mypy(result.stdout)
    if result.returncode not in (0, 1) or (result.returncode == 1 and not findings):
        raise SystemExit("mypy failed:\n" + result.stdout + result.stderr)
    return findings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("paths", nargs="*", type=Path, help="default: protocol firmware")
    parser.add_argument("--work-dir", type=Path, default=DEFAULT_WORK_DIR)
    parser.add_argument("-v", "--verbose", action="store_true", help="list what was pruned")
    parser.add_argument(
        "--all", action="store_true", help="also show (and fail on) mypy's other findings"
    )
    args = parser.parse_args(argv)
    targets: list[Path] = args.paths or [ROOT / t for t in DEFAULT_TARGETS]
    targets = [t for t in targets if t.exists()]
    files = python_files(targets)
    if not files:
        print("check_micropython_types: no .py files to check")
        return 0

    work: Path = args.work_dir
    typeshed, derived = assemble(work)
    removed = prune(derived)
    if args.verbose:
        for mod, names in sorted(removed.items()):
            print(f"pruned {mod}: {', '.join(names)}")
    pruned = {n.rpartition(".")[2] for names in removed.values() for n in names}

    stubbed = {
        _module_name(p.relative_to(typeshed / "stdlib").as_posix())
        for p in (typeshed / "stdlib").rglob("*.pyi")
    }
    import_errors = check_imports(files, stubbed)
    findings = run_mypy(targets, typeshed, work)
    shown = [f for f in findings if args.all or f.about_micropython(pruned)]
    for line in import_errors:
        print(line)
    for finding in shown:
        print("\n".join(finding.lines))
    errors = len(import_errors) + len(shown)
    hidden = len(findings) - len(shown)
    other = (
        f"; {hidden} other mypy findings about inferred types not shown (--all)" if hidden else ""
    )
    status = f"{errors} errors" if errors else "ok"
    print(f"check_micropython_types: {status}, {len(files)} files{other}")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
