"""What is in a watched folder, and what changed since the last look.

Runs in worker threads (every call here touches the disk). A ``TreeState`` remembers the last
look at one root, so a scan hands the event loop only the differences: a 100,000-file filespace
that did not change costs the loop nothing. Three ways to look, from cheap to thorough:

- ``stat_files``: just these files (those still settling);
- ``scan_dirs``: just these folders (those a file event named), and any new sub-folder in full;
- ``full_scan``: everything, the safety net for volumes that miss events (LucidLink files
  written by other machines raise none here). A folder whose modification time has not moved is
  not listed again, only its known files are looked at, once this volume has shown that it
  keeps folder times reliably.

A folder that cannot be read for a moment keeps what it held: a network hiccup must never look
like deleted files. Identities are the NFC form of the relative path (macOS writes NFD), folded
to one case on a case-insensitive volume, so one file is one identity however it is spelled.
"""

from __future__ import annotations

import os
import time
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import NamedTuple

from app.core.jobs import WatchRoot
from app.core.path_text import text_form
from app.engine.file_filter import FileFilter

MTIME_GRANULARITY_NS = 2_000_000_000  # coarse volumes (FAT, HFS+, some SMB) keep 1-2 s times
TRUST_AFTER_SCANS = 3  # full listings without contradiction before folder times are trusted
RELIST_EVERY = 10  # every tenth full scan lists everything anyway, and checks the trust again
THROTTLE_EVERY = 0.02  # throttled scans pause after this much work (seconds)…
THROTTLE_DUTY = 0.5  # …long enough to use at most this share of one core


class FoundFile(NamedTuple):
    """Tuples, not dataclasses: a first scan makes one of each per file (100,000s). The same
    tuple is the scan's memory of the file and what a diff reports: no second one per file."""

    root: WatchRoot
    rel_path: str  # NFC, "/" separators: the name the queue and Frame.io use
    abs_path: str  # as on disk
    size: int
    mtime_ns: int


Seen = FoundFile  # how a file was last seen (what ``removed`` reports)


@dataclass(slots=True)
class _Dir:
    path: str  # on disk (its name may be NFD; the relative path that keys it is NFC)
    mtime_ns: int
    listed_at_ns: int  # wall clock of the listing: a time this recent cannot be trusted yet
    files: tuple[str, ...]  # identities of the files directly in it
    subdirs: tuple[tuple[str, str], ...]  # (relative path, path on disk) of its sub-folders


@dataclass
class Diff:
    changed: list[FoundFile] = field(default_factory=list)  # new, or different since the last look
    removed: dict[str, Seen] = field(default_factory=dict)  # identity → how it was last seen
    skipped: dict[str, str] = field(default_factory=dict)  # relative path → why it is left out

    def __bool__(self) -> bool:
        return bool(self.changed or self.removed)


def nfc(text: str) -> str:
    """The identity form of a name: NFC, and valid text (see ``text_form``)."""
    if text.isascii():
        return text
    text = text_form(text)
    return text if unicodedata.is_normalized("NFC", text) else unicodedata.normalize("NFC", text)


class TreeState:
    """The last look at one root. Used by one scan at a time (the watcher's scan lock)."""

    def __init__(self, root: WatchRoot) -> None:
        self.root = root
        self.files: dict[str, Seen] = {}
        self._dirs: dict[str, _Dir] = {}
        self.case_insensitive: bool | None = None  # learnt at the first scan
        self.trust_mtimes: bool | None = None  # None: not known yet; False: this volume lies
        self.full_scans = 0
        self.listed = 0  # folders listed by the last scan (the rest were trusted)
        self.cpu_seconds = 0.0  # CPU the last full scan used (its thread's, pauses left out)
        self.known: set[tuple[str, int, int]] | None = None  # versions already handled (restart)
        self.forgotten: set[str] = set()  # identities to report again at the next look

    # ---- identity ----
    def identity(self, rel_path: str) -> str:
        key = nfc(rel_path)
        return key.casefold() if self.case_insensitive else key

    def expect(self, versions: Iterable[tuple[str, int, int]]) -> None:
        """Versions the queue already handled: the first scan does not report them as new
        (after a restart, 100,000 delivered files cost no queue work)."""
        self.known = {(nfc(p), size, mtime) for p, size, mtime in versions}

    # ---- looking ----
    def full_scan(self, file_filter: FileFilter, throttle: bool = False) -> Diff:
        """Raises OSError if the root itself cannot be read."""
        base = self.root.path
        if not os.path.isdir(base):
            raise FileNotFoundError(f"watched folder {base} is not reachable")
        if self.case_insensitive is None:
            self.case_insensitive = _case_insensitive(base)
        self.full_scans += 1
        relist = self.trust_mtimes is not True or self.full_scans % RELIST_EVERY == 0
        cpu_started = time.thread_time()
        diff = Diff()
        seen_files: dict[str, Seen] = {}
        seen_dirs: dict[str, _Dir] = {}
        contradicted = False
        pace = _Pace() if throttle else None
        stack = [("", base)]
        while stack:
            rel_dir, abs_dir = stack.pop()
            prev = self._dirs.get(rel_dir)
            try:
                mtime = os.stat(abs_dir).st_mtime_ns
                if not relist and prev is not None and _trustworthy(prev, mtime):
                    entry = self._restat(prev, seen_files)
                else:
                    entry = self._list(rel_dir, abs_dir, mtime, file_filter, seen_files, diff.skipped)
                    if prev is not None and _trustworthy(prev, mtime) and _entries(prev) != _entries(entry):
                        contradicted = True  # entries changed, the folder's time did not
            except OSError:
                if rel_dir == "":
                    raise
                self._keep_subtree(rel_dir, seen_files, seen_dirs)  # unreadable now: keep, forget nothing
                continue
            seen_dirs[rel_dir] = entry
            stack.extend(entry.subdirs)
            if pace is not None:
                pace.step()
        if relist:
            self._learn_trust(contradicted)
        self.cpu_seconds = time.thread_time() - cpu_started
        return self._replace(seen_files, seen_dirs, diff)

    def scan_dirs(self, rel_dirs: Iterable[str], file_filter: FileFilter) -> Diff:
        """List these folders (an event named them); a new sub-folder is walked in full, a
        vanished one takes its files with it. Unknown folders are found from their nearest known
        parent. Raises OSError if the root cannot be read."""
        base = self.root.path
        if not os.path.isdir(base):
            raise FileNotFoundError(f"watched folder {base} is not reachable")
        if not self._dirs:  # never scanned: nothing to compare with
            return self.full_scan(file_filter)
        targets = {self._known_ancestor(nfc_dir(d)) for d in rel_dirs}
        diff = Diff()
        seen_files: dict[str, Seen] = {}
        seen_dirs: dict[str, _Dir] = {}
        done: set[str] = set()
        for target in sorted(targets, key=len):
            if target in done:
                continue
            known = self._dirs.get(target)
            stack, first = [(target, known.path if known is not None else base)], True
            while stack:
                rel_dir, abs_dir = stack.pop()
                prev = self._dirs.get(rel_dir)
                try:
                    mtime = os.stat(abs_dir).st_mtime_ns
                    entry = self._list(rel_dir, abs_dir, mtime, file_filter, seen_files, diff.skipped)
                except OSError:
                    if first and rel_dir != "" and not os.path.exists(abs_dir):
                        self._drop_subtree(rel_dir, seen_dirs)  # deleted: its parent's listing says so
                        continue
                    if rel_dir == "":
                        raise
                    self._keep_subtree(rel_dir, seen_files, seen_dirs)
                    continue
                seen_dirs[rel_dir] = entry
                done.add(rel_dir)
                old_subdirs = {rel for rel, _ in prev.subdirs} if prev is not None else set()
                stack.extend(d for d in entry.subdirs if d[0] not in old_subdirs or d[0] not in self._dirs)
                for gone in old_subdirs - {rel for rel, _ in entry.subdirs}:
                    self._drop_subtree(gone, seen_dirs)
                first = False
        return self._merge(seen_files, seen_dirs, diff)

    def stat_files(self, identities: Iterable[str]) -> Diff:
        """Look at just these files again (they are still settling)."""
        diff = Diff()
        for ident in identities:
            seen = self.files.get(ident)
            if seen is None:
                continue
            now = _relook(seen)
            if now is None:
                del self.files[ident]
                diff.removed[ident] = seen
            elif now is not seen:
                self.files[ident] = now
                diff.changed.append(now)
        return diff

    def forget(self, identity: str) -> None:
        self.forgotten.add(identity)

    # ---- inside ----
    def _list(self, rel_dir: str, abs_dir: str, mtime: int, file_filter: FileFilter,
              seen_files: dict[str, Seen], skipped: dict[str, str]) -> _Dir:  # fmt: skip
        files: list[str] = []
        subdirs: list[tuple[str, str]] = []
        prefix = rel_dir + "/" if rel_dir else ""
        listed_at = time.time_ns()
        folded = self.case_insensitive
        why_skipped = file_filter.why_skipped
        make_seen, root = FoundFile._make, self.root  # C speed: a first scan makes one per file
        # The hot loop of a first scan (one pass per file of the filespace): the common case, a
        # regular file, is decided first and in as few calls as possible.
        with os.scandir(abs_dir) as entries:
            for entry in entries:
                name = entry.name
                try:
                    if entry.is_file(follow_symlinks=False):
                        why = why_skipped(name)
                        if why is not None:
                            skipped[prefix + name] = why
                            continue
                        st = entry.stat(follow_symlinks=False)
                        rel = prefix + (name if name.isascii() else nfc(name))
                        ident = rel.casefold() if folded else rel
                        seen = make_seen((root, rel, entry.path, st.st_size, st.st_mtime_ns))
                        first = seen_files.setdefault(ident, seen)
                        if first is not seen:  # the same name twice (NFD and NFC): keep the first
                            skipped[prefix + name] = f"another file has the same name ({first.rel_path})"
                            continue
                        files.append(ident)
                    elif entry.is_dir(follow_symlinks=False):
                        if file_filter.ignores_dir(name):
                            skipped[prefix + name] = "a hidden or ignored folder"
                        else:
                            subdirs.append((prefix + nfc(name), entry.path))
                    elif entry.is_symlink():
                        skipped[prefix + name] = "it is a symbolic link (only real files are uploaded)"
                    else:
                        skipped[prefix + name] = "it is not a regular file (a pipe, socket or device)"
                except OSError:
                    continue  # vanished or unreadable mid-listing: the next look decides
        self.listed += 1
        return _Dir(abs_dir, mtime, listed_at, tuple(files), tuple(subdirs))

    def _restat(self, prev: _Dir, seen_files: dict[str, Seen]) -> _Dir:
        """A trusted folder whose time did not move: same entries, only their sizes and times
        may have changed (a file rewritten in place)."""
        kept: list[str] = []
        for ident in prev.files:
            seen = self.files.get(ident)
            if seen is None:
                continue
            now = _relook(seen)
            if now is not None:
                seen_files[ident] = now
                kept.append(ident)
        return _Dir(prev.path, prev.mtime_ns, prev.listed_at_ns, tuple(kept), prev.subdirs)

    def _keep_subtree(self, rel_dir: str, seen_files: dict[str, Seen], seen_dirs: dict[str, _Dir]) -> None:
        stack = [rel_dir]
        while stack:
            current = stack.pop()
            prev = self._dirs.get(current)
            if prev is None:
                continue
            seen_dirs[current] = prev
            for ident in prev.files:
                if ident in self.files:
                    seen_files[ident] = self.files[ident]
            stack.extend(rel for rel, _ in prev.subdirs)

    def _drop_subtree(self, rel_dir: str, seen_dirs: dict[str, _Dir]) -> None:
        """Marks a vanished folder's subtree for removal in ``_merge``."""
        stack = [rel_dir]
        while stack:
            current = stack.pop()
            prev = self._dirs.get(current)
            seen_dirs[current] = _GONE
            if prev is not None:
                stack.extend(rel for rel, _ in prev.subdirs)

    def _known_ancestor(self, rel_dir: str) -> str:
        while rel_dir and rel_dir not in self._dirs:
            rel_dir = rel_dir.rsplit("/", 1)[0] if "/" in rel_dir else ""
        return rel_dir

    def _learn_trust(self, contradicted: bool) -> None:
        if contradicted:
            self.trust_mtimes = False  # this volume changes folders without changing their time
        elif self.trust_mtimes is None and self.full_scans >= TRUST_AFTER_SCANS:
            self.trust_mtimes = True

    def _replace(self, seen_files: dict[str, Seen], seen_dirs: dict[str, _Dir], diff: Diff) -> Diff:
        known, self.known = self.known, None
        forgotten, self.forgotten = self.forgotten, set()
        known_ids = None if known is None else {(self.identity(p), size, mtime) for p, size, mtime in known}
        if not self.files and known is None:  # the very first look: everything is new
            diff.changed.extend(seen_files.values())
            self.files, self._dirs = seen_files, seen_dirs
            return diff
        for ident, seen in seen_files.items():
            before = self.files.get(ident)
            if before is not None and (before.size, before.mtime_ns) == (seen.size, seen.mtime_ns):
                if ident not in forgotten:
                    continue
            elif before is None and known_ids is not None and (ident, seen.size, seen.mtime_ns) in known_ids:
                continue  # handled before the restart (under any case, on a case-insensitive volume)
            diff.changed.append(seen)
        for ident, before in self.files.items():
            if ident not in seen_files:
                diff.removed[ident] = before
        if known is not None and diff.changed:
            self._moved_while_stopped(known, seen_files, seen_dirs, diff)
        self.files = seen_files
        self._dirs = seen_dirs
        return diff

    def _moved_while_stopped(self, known: set[tuple[str, int, int]], seen_files: dict[str, Seen],
                             seen_dirs: dict[str, _Dir], diff: Diff) -> None:  # fmt: skip
        """The first look after a restart has no last look to compare with, so a handled file
        moved or renamed while PostFlow was stopped would look new. A handled version missing
        from a folder this look listed, with a new file of its size and mtime, is reported gone
        so the watcher pairs the two as a move (a folder not read now proves nothing)."""
        versions = {(f.size, f.mtime_ns) for f in diff.changed}
        for path, size, mtime in known:
            if (size, mtime) not in versions:
                continue
            ident = self.identity(path)
            parent = path.rsplit("/", 1)[0] if "/" in path else ""
            if ident in seen_files or ident in diff.removed or parent not in seen_dirs:
                continue
            diff.removed[ident] = Seen(self.root, path, os.path.join(self.root.path, path), size, mtime)

    def _merge(self, seen_files: dict[str, Seen], seen_dirs: dict[str, _Dir], diff: Diff) -> Diff:
        """A partial look: only the listed folders' files are compared and replaced."""
        forgotten = self.forgotten
        for rel_dir, entry in seen_dirs.items():
            prev = self._dirs.get(rel_dir)
            if entry is _GONE:
                self._dirs.pop(rel_dir, None)
                gone_files = prev.files if prev is not None else ()
            else:
                self._dirs[rel_dir] = entry
                now = set(entry.files)
                gone_files = tuple(i for i in (prev.files if prev is not None else ()) if i not in now)
            for ident in gone_files:
                before = self.files.pop(ident, None)
                if before is not None:
                    diff.removed[ident] = before
        for ident, seen in seen_files.items():
            before = self.files.get(ident)
            self.files[ident] = seen
            same = before is not None and (before.size, before.mtime_ns) == (seen.size, seen.mtime_ns)
            if same and ident not in forgotten:
                continue
            forgotten.discard(ident)
            diff.changed.append(seen)
        return diff


_GONE = _Dir("", 0, 0, (), ())


def _relook(seen: Seen) -> Seen | None:
    """The file as it is now: None once it is gone, ``seen`` itself when it did not change or
    cannot be read for a moment (the next look decides)."""
    try:
        st = os.lstat(seen.abs_path)
    except FileNotFoundError:
        return None
    except OSError:
        return seen
    if (st.st_size, st.st_mtime_ns) == (seen.size, seen.mtime_ns):
        return seen
    return seen._replace(size=st.st_size, mtime_ns=st.st_mtime_ns)


def nfc_dir(rel_dir: str) -> str:
    return nfc(rel_dir.strip("/"))


def _entries(entry: _Dir) -> tuple[frozenset[str], frozenset[tuple[str, str]]]:
    return frozenset(entry.files), frozenset(entry.subdirs)


def _trustworthy(prev: _Dir, mtime: int) -> bool:
    """Same time as at the last listing, and that time was old enough then that a change
    after the listing would have moved it (coarse clocks keep 1-2 s)."""
    return prev.mtime_ns == mtime and prev.listed_at_ns - prev.mtime_ns >= MTIME_GRANULARITY_NS


def _case_insensitive(base: str) -> bool:
    """Does this volume treat ``A`` and ``a`` as one name? Asked of the root's own path (or of
    a first entry when the path has no letters)."""
    probe = base
    swapped = probe.swapcase()
    if swapped == probe:
        try:
            with os.scandir(base) as entries:
                name = next((e.name for e in entries if e.name.swapcase() != e.name), None)
        except OSError:
            return False
        if name is None:
            return False
        probe, swapped = os.path.join(base, name), os.path.join(base, name.swapcase())
    try:
        return os.path.samefile(probe, swapped)
    except OSError:
        return False


class _Pace:
    """Keeps a background scan to a share of one core: it sleeps in proportion to its work."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._since = clock()

    def step(self) -> None:
        worked = self._clock() - self._since
        if worked >= THROTTLE_EVERY:
            time.sleep(worked * (1 - THROTTLE_DUTY) / THROTTLE_DUTY)
            self._since = self._clock()
