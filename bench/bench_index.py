"""The workspace index on Django 5.2's source distribution, against three references.

Everything runs on the same files in the same run:
- kimi-lsp: cold index (all cores, processes), warm start from the persisted SQLite index,
  a one-character edit inside a name in a ~3,000-line file (incremental update through
  `WorkspaceIndex.change_document`), peak RSS of the indexing process;
- the floor: one process looping tree-sitter parse + the grammars' own tags.scm query;
- universal-ctags (Debian package `universal-ctags`);
- Aider's RepoMap tag pass, installed into a throw-away venv under bench/.work.

The corpus is fetched with pip (`pip download --no-binary :all: django==5.2.*`).
``BENCH_AIDER=0`` skips the Aider reference (it installs aider-chat into a throw-away venv).

Wall-clock ratios move with whatever else the machine runs (the cold index needs every core,
the bare loop one): both are timed ``BENCH_INDEX_RUNS`` times (default 3), the fastest run
counting, and the CPU time of both (the index's parent and workers together) is reported
beside them, with the load average when the bench started.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path

from bench.table import Row

NAME = "index"
REPO = Path(__file__).resolve().parent.parent
AIDER_SPEC = "aider-chat"
AIDER = os.environ.get("BENCH_AIDER", "1") != "0"
# The cold index and the bare loop each run this many times, the fastest run counting (the
# same for both: a shared machine only ever slows a run down).
RUNS = int(os.environ.get("BENCH_INDEX_RUNS", "3"))

# Runs in a fresh interpreter so that its peak RSS is the index's alone.
_KIMI_SCRIPT = r"""
import json, os, resource, shutil, sys, time, tempfile
from pathlib import Path
from kimi_lsp.index import WorkspaceIndex

root, state, big = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
out = {}
for _ in range(int(sys.argv[4])):  # the fastest cold run counts; the last one's database stays
    shutil.rmtree(state, ignore_errors=True)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    cpu = time.process_time()
    index = WorkspaceIndex([root], state_dir=state)
    stats = index.update()
    cold = time.perf_counter() - t
    cold_cpu = time.process_time() - cpu
    # The workers have ended (the pool is shut down when `update` returns): their CPU time.
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    workers_cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    index.close()
    if cold < out.get("cold", float("inf")):
        out["cold"], out["cold_cpu"], out["cold_workers_cpu"] = cold, cold_cpu, workers_cpu
out["files"], out["defs"], out["refs"] = stats.files, stats.definitions, stats.references
out["workers"] = index.workers

t = time.perf_counter()
warm = WorkspaceIndex([root], state_dir=state)
wstats = warm.update()
out["warm"] = time.perf_counter() - t
out["warm_parsed"] = wstats.parsed
t = time.perf_counter()
found = warm.definitions("QuerySet")
out["first_query"] = time.perf_counter() - t
t = time.perf_counter()
warm.references_to(found[0])
out["first_refs"] = time.perf_counter() - t

text = big.read_text()
lines = text.split("\n")
mid = len(lines) // 2
line = next(
    i for i in range(mid, len(lines))
    if lines[i].startswith("        ") and "=" in lines[i] and '"' not in lines[i]
    and "'" not in lines[i] and "#" not in lines[i]
)
col = len(lines[line]) - len(lines[line].lstrip()) + 1  # inside the first name on the line
warm.open_document(big, text)
times = []
for i in range(1000):
    if i % 2 == 0:
        change = {"range": {"start": {"line": line, "character": col},
                            "end": {"line": line, "character": col}}, "text": "q"}
    else:
        change = {"range": {"start": {"line": line, "character": col},
                            "end": {"line": line, "character": col + 1}}, "text": ""}
    t = time.perf_counter()
    warm.change_document(big, [change])
    times.append(time.perf_counter() - t)
times.sort()
out["inc_p50"] = times[len(times) // 2]
out["inc_p95"] = times[int(len(times) * 0.95)]
out["big_lines"] = len(lines)
# VmHWM, not ru_maxrss: Linux carries ru_maxrss across fork and exec, so a fresh interpreter
# started by a big parent (make bench after the context bench) reported the parent's size.
with open("/proc/self/status") as status:
    hwm = next(line for line in status if line.startswith("VmHWM:"))
out["rss_mb"] = int(hwm.split()[1]) / 1024
out["rss_children_mb"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
print(json.dumps(out))
"""

_AIDER_SCRIPT = r"""
import json, os, shutil, sys, time
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
from aider.io import InputOutput
from aider.repomap import RepoMap

root, listing = sys.argv[1], sys.argv[2]
files = [line.strip() for line in open(listing) if line.strip()]


class Model:
    def token_count(self, text):
        return len(text) // 4


shutil.rmtree(os.path.join(root, RepoMap.TAGS_CACHE_DIR), ignore_errors=True)
rm = RepoMap(root=root, io=InputOutput(yes=True, pretty=False), main_model=Model())
out = {}
for phase in ("cold", "warm"):
    t = time.perf_counter()
    n = 0
    for f in files:
        n += len(list(rm.get_tags(f, os.path.relpath(f, root))))
    out[phase] = time.perf_counter() - t
    out[phase + "_tags"] = n
print(json.dumps(out))
"""


def _corpus(work: Path) -> Path:
    found = sorted(p for p in work.glob("django-5.2*") if p.is_dir())
    if found:
        return found[-1]
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "-q",
            "--no-deps",
            "--no-binary",
            ":all:",
            "django==5.2.*",
            "-d",
            str(work),
        ],
        check=True,
    )
    archive = sorted(work.glob("[Dd]jango-5.2*.tar.gz"))[-1]
    with tarfile.open(archive) as tar:
        tar.extractall(work, filter="data")
    return sorted(p for p in work.glob("django-5.2*") if p.is_dir())[-1]


def _files(corpus: Path) -> list[Path]:
    from kimi_lsp.index import IgnoreRules, discover

    return [c.path for c in discover(IgnoreRules([corpus]))]


def _bare_loop(files: list[Path]) -> tuple[float, float]:
    """The floor: one process, parse + the upstream tags.scm query, nothing kept.
    (wall seconds, CPU seconds)."""
    import importlib

    from tree_sitter import Query, QueryCursor

    from kimi_lsp.index.languages import LANGUAGES, language_for, new_parser, ts_language

    parsers, queries = {}, {}
    for name in {language_for(f) for f in files}:
        assert name is not None
        spec = LANGUAGES[name]
        mod = importlib.import_module(spec.module)
        src = (Path(mod.__file__ or "").parent / "queries" / "tags.scm").read_text()
        parsers[name] = new_parser(name)
        queries[name] = Query(ts_language(name), src)
    t = time.perf_counter()
    cpu = time.process_time()
    for f in files:
        lang = language_for(f)
        assert lang is not None
        tree = parsers[lang].parse(f.read_bytes())
        QueryCursor(queries[lang]).captures(tree.root_node)
    return time.perf_counter() - t, time.process_time() - cpu


def _ctags(files: list[Path], work: Path) -> float | str:
    if shutil.which("ctags") is None:
        subprocess.run([str(REPO / "scripts" / "apt-install"), "universal-ctags"], check=False)
    if shutil.which("ctags") is None:
        return "not installed"
    listing = work / "index-files.txt"
    listing.write_text("\n".join(map(str, files)) + "\n")
    t = time.perf_counter()
    subprocess.run(
        ["ctags", "-f", os.devnull, "--languages=Python,JavaScript", "-L", str(listing)],
        check=True,
        capture_output=True,
    )
    return time.perf_counter() - t


def _aider(files: list[Path], corpus: Path, work: Path) -> dict[str, float] | str:
    venv = work / "aider-venv"
    python = venv / "bin" / "python"
    probe = [str(python), "-c", "import aider.repomap"]
    if not python.exists() or subprocess.run(probe, capture_output=True).returncode != 0:
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        install = subprocess.run(
            [str(python), "-m", "pip", "install", "-q", AIDER_SPEC],
            capture_output=True,
            text=True,
        )
        if install.returncode != 0:
            return "could not install: " + (install.stderr.strip().splitlines() or ["?"])[-1]
    listing = work / "index-files.txt"
    listing.write_text("\n".join(map(str, files)) + "\n")
    run = subprocess.run(
        [str(python), "-c", _AIDER_SCRIPT, str(corpus), str(listing)],
        capture_output=True,
        text=True,
        timeout=1800,
    )
    if run.returncode != 0:
        return "failed: " + (run.stderr.strip().splitlines() or ["?"])[-1][:120]
    result: dict[str, float] = json.loads(run.stdout.strip().splitlines()[-1])
    return result


def _kimi(corpus: Path, big: Path, work: Path) -> dict[str, float]:
    state = work / "index-state"
    shutil.rmtree(state, ignore_errors=True)
    run = subprocess.run(
        [sys.executable, "-c", _KIMI_SCRIPT, str(corpus), str(state), str(big), str(RUNS)],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO,
    )
    result: dict[str, float] = json.loads(run.stdout.strip().splitlines()[-1])
    return result


def run(work: Path) -> list[Row]:
    corpus = _corpus(work)
    files = _files(corpus)
    lines = sum(f.read_bytes().count(b"\n") for f in files)
    # The Python file closest to 3,000 lines hosts the incremental edits.
    py = [f for f in files if f.suffix == ".py"]
    big = min(py, key=lambda f: abs(f.read_bytes().count(b"\n") - 3000))

    rows = [Row(NAME, "corpus", f"{corpus.name}: {len(files)} files, {lines} lines")]
    rows.append(Row(NAME, "machine: cores, load average (1 min) at start", f"{os.cpu_count()}, "
                    f"{os.getloadavg()[0]:.2f}"))  # fmt: skip
    bare, bare_cpu = min(_bare_loop(files) for _ in range(RUNS))
    ctags = _ctags(files, work)
    kimi = _kimi(corpus, big, work)
    aider = _aider(files, corpus, work) if AIDER else "skipped (BENCH_AIDER=0)"

    cold = kimi["cold"]
    rows.append(Row(NAME, "reference: bare parse+tags loop (1 process)", bare, "s"))
    rows.append(
        Row(NAME, "reference: universal-ctags", ctags, "s" if isinstance(ctags, float) else "")
    )
    if isinstance(aider, dict):
        rows.append(Row(NAME, "reference: Aider RepoMap tags, cold", aider["cold"], "s"))
        rows.append(Row(NAME, "reference: Aider RepoMap tags, warm (cache)", aider["warm"], "s"))
    else:
        rows.append(Row(NAME, "reference: Aider RepoMap tags", aider))
    rows.append(
        Row(
            NAME,
            f"cold index ({int(kimi['workers'])} processes) vs bare loop, best of {RUNS}",
            cold,
            "s",
            reference=bare,
            reference_name="bare loop",
            target=">= 1.8x faster",
            ok=bare / cold >= 1.8,
        )
    )
    cold_cpu = kimi["cold_cpu"] + kimi["cold_workers_cpu"]
    rows.append(
        Row(
            NAME,
            "CPU per file: cold index (parent + workers) vs bare loop",
            cold_cpu / len(files) * 1000,
            "ms",
            reference=bare_cpu / len(files) * 1000,
            reference_name="bare loop",
        )
    )
    rows.append(Row(NAME, "CPU of the cold index's parent process", kimi["cold_cpu"], "s"))
    if isinstance(aider, dict):
        rows.append(
            Row(
                NAME,
                "cold index vs Aider",
                cold,
                "s",
                reference=aider["cold"],
                reference_name="Aider cold",
                target=">= 6x faster",
                ok=aider["cold"] / cold >= 6,
            )
        )
    rows.append(Row(NAME, "cold index throughput", kimi["files"] / cold, "files/s"))
    rows.append(
        Row(
            NAME,
            f"indexed: {int(kimi['defs'])} definitions, {int(kimi['refs'])} references",
            kimi["files"],
            "files",
        )
    )
    rows.append(
        Row(
            NAME,
            f"warm start ({int(kimi['warm_parsed'])} files re-parsed)",
            kimi["warm"],
            "s",
            target="< 0.3 s",
            ok=kimi["warm"] < 0.3,
        )
    )
    rows.append(
        Row(
            NAME,
            "first name query after warm start",
            kimi["first_query"] * 1000,
            "ms",
            target="< 50 ms",
            ok=kimi["first_query"] < 0.05,
        )
    )
    rows.append(Row(NAME, "first references query after it", kimi["first_refs"] * 1000, "ms"))
    label = f"1-char edit, {big.name} ({int(kimi['big_lines'])} lines)"
    rows.append(Row(NAME, f"{label} p50", kimi["inc_p50"] * 1000, "ms"))
    rows.append(
        Row(
            NAME,
            f"{label} p95",
            kimi["inc_p95"] * 1000,
            "ms",
            target="< 2 ms",
            ok=kimi["inc_p95"] < 0.002,
        )
    )
    rows.append(
        Row(
            NAME,
            "peak RSS of the indexing process",
            kimi["rss_mb"],
            "MB",
            target="< 300 MB",
            ok=kimi["rss_mb"] < 300,
        )
    )
    rows.append(Row(NAME, "peak RSS of one worker process", kimi["rss_children_mb"], "MB"))
    return rows
