"""Reading the model's git repository as data: copied objects, read in a fresh sandbox.

Nothing git could take as configuration or code from the model is ever honoured:

1. In the model's (frozen) sandbox, a trusted ``python3 -I -S`` copies only data, never
   following a symlink: ``HEAD``, ``packed-refs``, the regular files under ``refs/``, the loose
   objects (``objects/xx/<38 hex>``), the packs (``pack-*.pack`` and ``.idx``) and the index
   (kept aside, as bytes). ``config``, hooks, ``info/``, ``objects/info/`` (alternates,
   commit-graph, packs list), multi-pack indexes, bitmaps, grafts, ``shallow``, worktrees and
   reflogs are never copied. A ``.git`` that is not a real directory (a symlink, a
   ``gitdir:`` file), a ``commondir`` or ``objects/info/alternates`` is refused outright. The
   work tree is not copied at all: it is listed (kind, mode, git blob id of each regular file
   and symlink, ``.git`` entries skipped) and compared on the host.
2. In a fresh sandbox the copy gets a bare repository config of ours (fsmonitor, hooks,
   excludes and attributes files, commit-graph, multi-pack index, untracked cache and split
   index off), an ``info/attributes`` of ours that unsets every attribute with a driver or a
   conversion (highest precedence, so no ``.gitattributes`` of the model's matters), and
   ``git fsck --full`` must pass: every object hashes to its name, every ref points at a
   real object. Git runs there with ``env -i``, no system or global config, an empty
   ``$HOME``, replace objects off, and the same settings again as ``-c`` flags.
3. "Clean work tree" is decided without git reading the model's work tree: the listed work
   tree must equal HEAD's tree (modes and blob ids), the model's index must hold exactly
   HEAD's entries (no staged change, no conflict, no intent-to-add; its flags such as
   ``assume-unchanged`` or ``skip-worktree`` are never honoured), and every untracked path
   must be ignored by the ``.gitignore`` files *committed* in HEAD (checked on a pristine
   checkout of HEAD with ``git check-ignore --no-index``).
"""

from __future__ import annotations

import base64
import contextlib
import json
import secrets
import shlex
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from runtime.sandbox.backend import ExecResult, Sandbox

from .core import Box, Check, fresh_sandbox, lines

if TYPE_CHECKING:
    from .core import Probe

GIT_TIMEOUT_S = 30.0
MAX_DUMP_BYTES = 4 << 20
"""Largest compressed copy of a repository's git data the checker takes (the tasks' are tiny)."""

DUMP = r"""
import base64, hashlib, json, os, re, stat, sys, zlib
repo, out = sys.argv[1], sys.argv[2]
LIMIT, MAX_ENTRIES = 32 << 20, 20000
budget = [LIMIT]

def fail(message):
    print(json.dumps({"error": message}))
    sys.exit(0)

def kind(path):
    try:
        return os.lstat(path)
    except OSError:
        return None

def read(path):
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
            return None
        data = handle.read(budget[0] + 1)
    budget[0] -= len(data)
    if budget[0] < 0:
        fail("the repository is too large to check")
    return data

st = kind(repo)
if st is None or not stat.S_ISDIR(st.st_mode):
    fail("/work/repo is not a directory")
gitdir = os.path.join(repo, ".git")
st = kind(gitdir)
if st is None:
    fail("/work/repo/.git is missing")
if not stat.S_ISDIR(st.st_mode):
    fail("/work/repo/.git is not a directory (a symlink or a gitdir: file is not followed)")
for name, why in (
    ("commondir", "a commondir file (metadata borrowed from elsewhere) is not honoured"),
    ("objects/info/alternates", "objects/info/alternates (borrowed objects) is not honoured"),
    ("objects/info/http-alternates", "objects/info/http-alternates is not honoured"),
):
    if kind(os.path.join(gitdir, name)) is not None:
        fail(name + ": " + why)

files = {}

def take(rel):
    full = os.path.join(gitdir, rel)
    st = kind(full)
    if st is not None and stat.S_ISREG(st.st_mode):
        data = read(full)
        if data is not None:
            files[rel] = base64.b64encode(data).decode()

def walk_dirs(rel):
    # Real directories only, never through a symlink.
    full = os.path.join(gitdir, rel)
    st = kind(full)
    if st is None or not stat.S_ISDIR(st.st_mode):
        return []
    try:
        return sorted(os.listdir(full))
    except OSError:
        fail("cannot list .git/" + rel)

for rel in ("HEAD", "packed-refs", "index"):
    take(rel)
todo = ["refs"]
while todo:
    rel = todo.pop()
    for name in walk_dirs(rel):
        child = rel + "/" + name
        st = kind(os.path.join(gitdir, child))
        if st is None:
            continue
        if stat.S_ISDIR(st.st_mode):
            todo.append(child)
        elif stat.S_ISREG(st.st_mode) and not name.endswith(".lock"):
            take(child)
        if len(files) > MAX_ENTRIES:
            fail("the repository has too many refs to check")
for fan in walk_dirs("objects"):
    if re.fullmatch(r"[0-9a-f]{2}", fan):
        for name in walk_dirs("objects/" + fan):
            if re.fullmatch(r"[0-9a-f]{38}", name):
                take("objects/" + fan + "/" + name)
                if len(files) > MAX_ENTRIES:
                    fail("the repository has too many objects to check")
for name in walk_dirs("objects/pack"):
    if re.fullmatch(r"pack-[0-9a-f]{40}\.(pack|idx)", name):
        take("objects/pack/" + name)

tree, todo = {}, [""]
while todo:
    rel = todo.pop()
    full = os.path.join(repo, rel) if rel else repo
    try:
        names = os.listdir(full)
    except OSError:
        fail("cannot list the work tree folder " + (rel or "."))
    for name in names:
        if name == ".git":
            continue
        child = rel + "/" + name if rel else name
        path = os.path.join(repo, child)
        st = kind(path)
        if st is None:
            continue
        if stat.S_ISDIR(st.st_mode):
            todo.append(child)
            continue
        if stat.S_ISLNK(st.st_mode):
            mode, data = "120000", os.fsencode(os.readlink(path))
        elif stat.S_ISREG(st.st_mode):
            mode = "100755" if st.st_mode & 0o100 else "100644"
            try:
                data = read(path)
            except OSError:
                fail("cannot read the work tree file " + child)
            if data is None:
                continue
        else:
            continue
        blob = hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()
        tree[child] = [mode, blob]
        if len(tree) > MAX_ENTRIES:
            fail("the work tree has too many files to check")

payload = zlib.compress(json.dumps({"git": files, "tree": tree}).encode(), 6)
fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
with os.fdopen(fd, "wb") as handle:
    handle.write(payload)
print(json.dumps({"size": len(payload)}))
"""
"""Copies the repository's git data and lists its work tree (run in the model's sandbox)."""

RESTORE = r"""
import base64, json, os, sys, zlib
src, root = sys.argv[1], sys.argv[2]
with open(src, "rb") as handle:
    data = json.loads(zlib.decompress(base64.b64decode(handle.read())))
os.makedirs(root + "/git/objects/pack")
os.makedirs(root + "/git/refs/heads")
os.makedirs(root + "/git/refs/tags")
os.makedirs(root + "/git/info")
for name in ("home", "empty", "pristine"):
    os.makedirs(root + "/" + name)
for rel, blob in data["git"].items():
    parts = rel.split("/")
    if any(p in ("", ".", "..") for p in parts):
        continue
    target = root + ("/model-index" if rel == "index" else "/git/" + rel)
    os.makedirs(os.path.dirname(target), exist_ok=True)
    with open(target, "wb") as handle:
        handle.write(base64.b64decode(blob))
with open(root + "/git/config", "w") as handle:
    handle.write(sys.stdin.read())
with open(root + "/git/info/attributes", "w") as handle:
    handle.write("* -text -eol -crlf -ident -filter -diff -merge -working-tree-encoding "
                 "-export-ignore -export-subst\n")
print(json.dumps(data["tree"]))
"""
"""Lays the copy out in the fresh sandbox: a bare repository of ours with the copied data."""

PLACEHOLDERS = r"""
import json, os, sys
root = sys.argv[1]
blocked = []
for rel in json.loads(sys.stdin.read()):
    parts = rel.split("/")
    if any(p in ("", ".", "..") for p in parts):
        blocked.append(rel)
        continue
    try:
        os.makedirs(os.path.join(root, *parts[:-1]), exist_ok=True)
        path = os.path.join(root, *parts)
        if not os.path.lexists(path):
            open(path, "w").close()
        elif not os.path.isfile(path) or os.path.islink(path):
            blocked.append(rel)
    except OSError:
        blocked.append(rel)
print(json.dumps(blocked))
"""
"""Creates an empty file at each untracked path in the pristine checkout (to ask git whether
the committed rules ignore it); prints the paths that collide with a tracked entry."""

CONFIG = """\
[core]
\trepositoryformatversion = 0
\tbare = true
\tfsmonitor = false
\thooksPath = /dev/null
\texcludesFile = /dev/null
\tattributesFile = /dev/null
\tcommitGraph = false
\tmultiPackIndex = false
\tuntrackedCache = false
\tsplitIndex = false
\tsparseCheckout = false
\tsymlinks = true
\tfilemode = true
\tignoreCase = false
\tautocrlf = false
\tprotectNTFS = true
\tprotectHFS = true
\tlogAllRefUpdates = false
[gc]
\tauto = 0
[index]
\tsparse = false
[submodule]
\trecurse = false
[protocol]
\tallow = never
"""
"""The only config the checker's git reads (no include, no driver, no program)."""

PINNED = (
    "core.fsmonitor=false",
    "core.hooksPath=/dev/null",
    "core.excludesFile=/dev/null",
    "core.attributesFile=/dev/null",
    "core.commitGraph=false",
    "core.untrackedCache=false",
    "core.splitIndex=false",
    "core.sparseCheckout=false",
    "submodule.recurse=false",
    "protocol.allow=never",
)


@dataclass
class GitView:
    """The checker's read-only view of one repository of the model's (see the module doc)."""

    box: Box | None
    root: str = ""
    error: str = ""
    """Why the repository could not be read; empty when it could."""
    worktree: dict[str, tuple[str, str]] = field(default_factory=dict)
    """Work tree path -> (git mode, blob id) of its regular files and symlinks."""

    async def git(
        self, *args: str, index: str | None = None, cwd: str = "", stdin: str = ""
    ) -> ExecResult:
        """Our git on the copy (``index``: a path for ``GIT_INDEX_FILE``); exit 128 and the
        reason when the repository could not be read."""
        if self.box is None:
            return ExecResult(exit_code=128, stdout="", stderr=self.error, duration_s=0.0)
        home = f"{self.root}/home"
        env = [
            "PATH=/usr/bin:/bin",
            f"HOME={home}",
            f"XDG_CONFIG_HOME={home}",
            "LANG=C.UTF-8",
            f"GIT_DIR={self.root}/git",
            "GIT_CONFIG_NOSYSTEM=1",
            "GIT_CONFIG_GLOBAL=/dev/null",
            "GIT_ATTR_NOSYSTEM=1",
            "GIT_NO_REPLACE_OBJECTS=1",
            "GIT_OPTIONAL_LOCKS=0",
            "GIT_TERMINAL_PROMPT=0",
            f"GIT_INDEX_FILE={index or self.root + '/no-index'}",
        ]
        flags = " ".join(f"-c {shlex.quote(c)}" for c in PINNED)
        argv = " ".join(shlex.quote(a) for a in args)
        where = shlex.quote(cwd or f"{self.root}/empty")
        return await self.box.sh(
            f"cd {where} && exec /usr/bin/env -i {' '.join(env)} /usr/bin/git --no-pager "
            f"{flags} --git-dir={self.root}/git {argv}",
            stdin=stdin,
            timeout_s=GIT_TIMEOUT_S,
        )

    async def rev(self, spec: str) -> str | None:
        """The object name ``spec`` resolves to, or None."""
        result = await self.git("rev-parse", "--verify", "--quiet", "--end-of-options", spec)
        text = result.stdout.strip()
        return text if result.exit_code == 0 and len(text) == 40 else None

    async def is_ancestor(self, older: str, newer: str) -> bool:
        """Whether commit ``older`` is an ancestor of (or equal to) ``newer``."""
        result = await self.git("merge-base", "--is-ancestor", older, newer)
        return result.exit_code == 0

    async def tree(self, rev: str) -> dict[str, tuple[str, str]] | None:
        """Every entry of ``rev``'s tree, recursively: path -> (mode, object id)."""
        result = await self.git("ls-tree", "-r", "-z", "--full-tree", rev)
        if result.exit_code != 0 or result.stdout_truncated:
            return None
        out = {}
        for record in result.stdout.split("\0"):
            meta, _, path = record.partition("\t")
            fields = meta.split()
            if len(fields) == 3:
                out[path] = (fields[0], fields[2])
        return out

    async def head_branch(self) -> str | None:
        """The branch HEAD names (``refs/heads/...``), or None if HEAD is detached or absent."""
        result = await self.git("symbolic-ref", "--quiet", "HEAD")
        return result.stdout.strip() if result.exit_code == 0 else None

    async def index_entries(self) -> dict[str, tuple[str, str]] | None:
        """The model's index as stored (stage-0 entries; None if unreadable or conflicted).
        Only the entries are read: its flags and cached data are never trusted."""
        result = await self.git(
            "--work-tree", f"{self.root}/empty", "ls-files", "-s", "-z",
            index=f"{self.root}/model-index",
        )  # fmt: skip
        if result.exit_code != 0 or result.stdout_truncated:
            return None
        out = {}
        for record in filter(None, result.stdout.split("\0")):
            meta, _, path = record.partition("\t")
            fields = meta.split()
            if len(fields) != 3 or fields[2] != "0":
                return None
            out[path] = (fields[0], fields[1])
        return out

    async def not_ignored(self, rev: str, paths: list[str]) -> list[str] | None:
        """The ``paths`` that the ``.gitignore`` files committed in ``rev`` do NOT ignore
        (checked on a pristine checkout of ``rev``; nothing of the work tree is read)."""
        if not paths:
            return []
        if self.box is None:
            return None
        work = f"{self.root}/pristine/{secrets.token_hex(4)}"
        index = f"{work}.index"
        tree = f"--work-tree={work}"
        made = await self.box.sh(f"/usr/bin/mkdir -p {work}")
        read = await self.git(tree, "read-tree", rev, index=index)
        checkout = await self.git(tree, "checkout-index", "-a", "-f", index=index, cwd=work)
        if made.exit_code or read.exit_code or checkout.exit_code:
            return None
        placed = await self.box.python(PLACEHOLDERS, work, stdin=json.dumps(paths))
        try:
            blocked = set(json.loads(placed.stdout))
        except ValueError:
            return None
        asked = [p for p in paths if p not in blocked]
        result = await self._check_ignore(work, index, asked)
        if result is None:
            return None
        return sorted(blocked | (set(asked) - result))

    async def _check_ignore(self, work: str, index: str, paths: list[str]) -> set[str] | None:
        """The ``paths`` that ``work``'s ``.gitignore`` files ignore (rules only: --no-index)."""
        if not paths:
            return set()
        result = await self.git(
            f"--work-tree={work}", "check-ignore", "--no-index", "-z", "--stdin",
            index=index, cwd=work, stdin="\0".join(paths) + "\0",
        )  # fmt: skip
        if result.exit_code not in (0, 1) or result.stdout_truncated:
            return None
        return set(filter(None, result.stdout.split("\0")))

    async def clean_tree(self) -> Check:
        """The work tree and the index hold exactly HEAD's tree; every other file of the work
        tree is ignored by the ``.gitignore`` files committed in HEAD."""
        name = "clean_work_tree"
        if self.error:
            return Check(name, False, self.error)
        head = await self.tree("HEAD")
        if head is None:
            return Check(name, False, "HEAD has no readable tree")
        files = {p: e for p, e in head.items() if e[0] != "160000"}
        changed = sorted(p for p, e in files.items() if self.worktree.get(p) != e)
        if changed:
            return Check(name, False, f"changed or deleted in the work tree: {changed[:5]}")
        index = await self.index_entries()
        if index is None:
            return Check(name, False, "the index is missing, unreadable or has conflicts")
        if index != head:
            staged = sorted(set(index.items()) ^ set(head.items()))
            return Check(name, False, f"staged changes: {sorted({p for p, _ in staged})[:5]}")
        untracked = sorted(set(self.worktree) - set(files))
        loose = await self.not_ignored("HEAD", untracked)
        if loose is None:
            return Check(name, False, "could not check the untracked files")
        if loose:
            return Check(name, False, f"untracked and not ignored: {loose[:5]}")
        return Check(name, True)


async def _dump(probe: Probe, path: str) -> tuple[dict[str, Any] | None, str]:
    """Copy ``/work/path``'s git data out of the model's sandbox: (the payload, "") or
    (None, why not)."""
    spot = f"/tmp/.score-{secrets.token_hex(8)}"
    made = await probe.python(DUMP, f"/work/{path}", spot)
    try:
        reply = json.loads(made.stdout)
    except ValueError:
        return None, f"could not copy the repository (exit {made.exit_code})"
    if "error" in reply:
        return None, str(reply["error"])
    size = int(reply.get("size", 0))
    try:
        data = await probe.fetch(spot, size) if size <= MAX_DUMP_BYTES else None
    finally:
        await probe.sh(f"/usr/bin/rm -f {spot}")
    if data is None:
        return None, "the repository is too large to check, or its copy could not be read"
    return {"payload": base64.b64encode(data).decode()}, ""


@contextlib.asynccontextmanager
async def open_repository(probe: Probe, path: str) -> AsyncIterator[GitView]:
    """The repository at ``/work/path`` of the probe's sandbox, as a `GitView` backed by a
    fresh sandbox (removed when the block ends)."""
    dumped, why = await _dump(probe, path)
    if dumped is None:
        yield GitView(None, error=why)
        return
    async with fresh_sandbox(probe.ctx) as sandbox:
        yield await _restore(sandbox, dumped["payload"])


async def _restore(sandbox: Sandbox, payload: str) -> GitView:
    box = Box(sandbox, GIT_TIMEOUT_S)
    root = f"/tmp/r{secrets.token_hex(4)}"
    written = await sandbox.write_file("dump.b64", payload)
    if not written.ok:
        return GitView(None, error=f"could not copy the repository: {written.error}")
    laid = await box.python(RESTORE, "/work/dump.b64", root, stdin=CONFIG)
    try:
        worktree = {p: (str(m), str(b)) for p, (m, b) in json.loads(laid.stdout).items()}
    except (ValueError, TypeError):
        return GitView(None, error="could not lay out the copy of the repository")
    view = GitView(box, root=root, worktree=worktree)
    fsck = await view.git("fsck", "--full", "--no-dangling", "--no-reflogs", "--no-progress")
    if fsck.exit_code != 0:
        problem = lines(fsck.stdout + "\n" + fsck.stderr)[:2]
        return GitView(None, error=f"the repository is corrupt: {'; '.join(problem)[:200]}")
    return view
