"""Download the benchmark and test data from its public sources, check every file's sha256, lay it out for the tests.

    python tools/fetch_data.py                      # everything: coco128, mot, models, video
    python tools/fetch_data.py mot coco128          # some data sets
    python tools/fetch_data.py --check              # only verify what is there (no downloads)
    python tools/fetch_data.py --list               # what each data set is, its licence, where it comes from
    EDGEDET_DATA=/data/edgedet python tools/fetch_data.py

Where: --dest DIR, else $EDGEDET_DATA, else ../shared/data beside the repository (where the tests look; they
read $EDGEDET_DATA too). What: tools/data_manifest.json lists every file with its size, sha256 and the URLs
it comes from (tried in order; the first whose bytes match wins). coco128 comes as Ultralytics' zip, of which
only the listed files are kept. A file already there with the right hash is not downloaded again; a download
is written to a temporary name and renamed only after its hash matched, so a failed or interrupted run never
leaves a wrong file where the tests look. A few small files the project wrote itself (MOT15 seqinfo.ini, the
coco128 dataset yaml) are in the manifest as text. Files made here from others (the reference ONNX exports, the
state-dict file) have no public source: --list says how they were made; the tests that need them skip.

--mirror URL fetches every file from URL/<path in the data folder> (and archives from URL/<archive name>)
instead: a local copy, or a server on loopback in the tests. --write-manifest DIR recomputes sizes and hashes
from a trusted copy. Standard library only, so it runs before anything is installed.
Exit status: 0 all requested files present and verified; 1 some missing or wrong (each named on stderr).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sys
import tempfile
import urllib.error
import urllib.request
import zipfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
MANIFEST = Path(__file__).with_name("data_manifest.json")
DATA_ENV = "EDGEDET_DATA"
DEFAULT_DEST = REPO.parent / "shared" / "data"
_CHUNK = 1 << 20
_TIMEOUT_S = 60


def data_root(dest: str | os.PathLike[str] | None = None) -> Path:
    """--dest, else $EDGEDET_DATA, else ../shared/data beside the repository."""
    if dest is not None:
        return Path(dest).expanduser()
    env = os.environ.get(DATA_ENV)
    return Path(env).expanduser() if env else DEFAULT_DEST


def load_manifest(path: Path = MANIFEST) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def _is_good(path: Path, entry: dict[str, Any]) -> bool:
    return path.is_file() and path.stat().st_size == entry["size"] and sha256_file(path) == entry["sha256"]


def _say(msg: str) -> None:
    print(msg, flush=True)


def _warn(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


class Fetcher:
    """Downloads into `root`, verifying each file; `mirror` replaces every URL with mirror/<name>."""

    def __init__(self, root: Path, mirror: str | None = None) -> None:
        self.root = root
        self.mirror = mirror.rstrip("/") if mirror else None
        self.downloads = 0
        self.problems: list[str] = []

    def urls(self, name: str, urls: Iterable[str]) -> list[str]:
        return [f"{self.mirror}/{name}"] if self.mirror else list(urls)

    def _download(self, url: str, out: Path) -> None:
        """Stream `url` into `out` (raises OSError / urllib errors)."""
        req = urllib.request.Request(url, headers={"User-Agent": "edgedet-fetch-data"})
        with urllib.request.urlopen(req, timeout=_TIMEOUT_S) as resp, open(out, "wb") as f:
            shutil.copyfileobj(resp, f, _CHUNK)
        self.downloads += 1

    def fetch_file(self, entry: dict[str, Any]) -> bool:
        """One plain file: present and good, else downloaded from the first URL whose bytes match."""
        target = self.root / entry["path"]
        if _is_good(target, entry):
            return True
        target.parent.mkdir(parents=True, exist_ok=True)
        if "text" in entry:  # written by the project itself: the manifest holds it
            data = entry["text"].encode("utf-8")
            if hashlib.sha256(data).hexdigest() != entry["sha256"]:
                self.problems.append(f"{entry['path']}: the manifest's text does not match its own sha256")
                return False
            _atomic_write(target, data)
            return True
        errors = []
        for url in self.urls(entry["path"], entry.get("urls", [])):
            fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
            os.close(fd)
            tmp = Path(tmp_name)
            try:
                self._download(url, tmp)
                if _is_good(tmp, entry):
                    os.replace(tmp, target)
                    _say(f"  {entry['path']}  {entry['size']:,} bytes  ok  ({url})")
                    return True
                errors.append(f"{url}: sha256 {sha256_file(tmp)[:16]}..., expected {entry['sha256'][:16]}...")
            except (OSError, urllib.error.URLError) as exc:
                errors.append(f"{url}: {getattr(exc, 'reason', None) or exc}")
            finally:
                tmp.unlink(missing_ok=True)
        self.problems.append(f"{entry['path']}: not fetched ({'; '.join(errors) or 'no URL'})")
        return False

    def fetch_archive_members(self, name: str, urls: list[str], entries: list[dict[str, Any]]) -> None:
        """Files that come out of one archive: downloaded once when any of them is missing or wrong."""
        todo = [e for e in entries if not _is_good(self.root / e["path"], e)]
        if not todo:
            return
        errors = []
        with tempfile.TemporaryDirectory(prefix="edgedet-fetch-") as tmpdir:
            for url in self.urls(name, urls):
                archive = Path(tmpdir) / name
                try:
                    self._download(url, archive)
                    with zipfile.ZipFile(archive) as zf:
                        todo = self._extract(zf, todo, url)
                except (OSError, urllib.error.URLError, zipfile.BadZipFile) as exc:
                    errors.append(f"{url}: {getattr(exc, 'reason', None) or exc}")
                    continue
                if not todo:
                    return
                errors.append(f"{url}: {len(todo)} files missing or different in the archive")
        for e in todo:
            self.problems.append(f"{e['path']}: not fetched from {name} ({'; '.join(errors)})")

    def _extract(self, zf: zipfile.ZipFile, todo: list[dict[str, Any]], url: str) -> list[dict[str, Any]]:
        members = set(zf.namelist())
        left = []
        for e in todo:
            if e["path"] not in members:
                left.append(e)
                continue
            data = zf.read(e["path"])
            if len(data) != e["size"] or hashlib.sha256(data).hexdigest() != e["sha256"]:
                left.append(e)
                continue
            target = self.root / e["path"]
            target.parent.mkdir(parents=True, exist_ok=True)
            _atomic_write(target, data)
        _say(f"  {len(todo) - len(left)} files from {Path(url).name}")
        return left


def _atomic_write(target: Path, data: bytes) -> None:
    tmp = target.with_name(f".{target.name}.part")
    tmp.write_bytes(data)
    os.replace(tmp, target)


def fetch(names: list[str], root: Path, mirror: str | None = None, manifest: dict[str, Any] | None = None) -> Fetcher:
    """Fetch the named data sets into `root`; returns the Fetcher (its `problems` list what failed)."""
    manifest = manifest or load_manifest()
    fetcher = Fetcher(root, mirror)
    for name in names:
        ds = manifest["datasets"][name]
        _say(f"{name}: {ds['what']} -> {root}")
        _say(f"  licence: {ds['license']}")
        by_archive: dict[str, list[dict[str, Any]]] = {}
        for entry in ds["files"]:
            if "archive" in entry:
                by_archive.setdefault(entry["archive"], []).append(entry)
            else:
                fetcher.fetch_file(entry)
        for archive, entries in by_archive.items():
            fetcher.fetch_archive_members(archive, ds["archives"][archive], entries)
        for made in ds.get("made_here", []):
            if not (root / made["path"]).is_file():
                _say(f"  {made['path']}: no public source, not fetched (made here: {made['how']})")
    return fetcher


def check(names: list[str], root: Path, manifest: dict[str, Any]) -> list[str]:
    """Problems with what is in `root` (missing or different files), without downloading."""
    problems = []
    for name in names:
        for entry in manifest["datasets"][name]["files"]:
            p = root / entry["path"]
            if not p.is_file():
                problems.append(f"{entry['path']}: missing")
            elif not _is_good(p, entry):
                problems.append(f"{entry['path']}: differs from the manifest (size or sha256)")
    return problems


def write_manifest(source: Path, manifest: dict[str, Any], path: Path = MANIFEST) -> None:
    """Recompute every listed file's size and sha256 from a trusted copy at `source`."""
    for ds in manifest["datasets"].values():
        for entry in [*ds["files"], *ds.get("made_here", [])]:
            p = source / entry["path"]
            if p.is_file():
                entry["sha256"] = sha256_file(p)
                if "size" in entry:
                    entry["size"] = p.stat().st_size
            if "text" in entry and p.is_file():
                entry["text"] = p.read_text(encoding="utf-8")
    path.write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    manifest = load_manifest()
    all_names = list(manifest["datasets"])
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("datasets", nargs="*", metavar="DATASET", help=f"any of {', '.join(all_names)} (default: all)")
    ap.add_argument("--dest", help=f"data folder (default: ${DATA_ENV}, else {DEFAULT_DEST})")
    ap.add_argument("--mirror", help="fetch every file from MIRROR/<path> instead of its public source")
    ap.add_argument("--check", action="store_true", help="verify what is there; download nothing")
    ap.add_argument("--list", action="store_true", help="describe the data sets and their sources")
    ap.add_argument("--write-manifest", metavar="DIR", help="recompute sizes and hashes from a trusted copy")
    args = ap.parse_args(argv)
    unknown = [n for n in args.datasets if n not in manifest["datasets"]]
    if unknown:
        _warn(f"error: unknown data set {', '.join(unknown)}: choose from {', '.join(all_names)}")
        return 2
    names = args.datasets or all_names
    if args.write_manifest:
        write_manifest(Path(args.write_manifest), manifest)
        _say(f"wrote {MANIFEST}")
        return 0
    root = data_root(args.dest)
    if args.list:
        for n in names:
            ds = manifest["datasets"][n]
            sources = sorted({u.split("/")[2] + "/" + "/".join(u.split("/")[3:5]) for e in ds["files"] for u in e.get("urls", [])})
            sources += [u for urls in ds.get("archives", {}).values() for u in urls]
            _say(f"{n}: {ds['what']}; {len(ds['files'])} files; licence: {ds['license']}")
            for s in sources:
                _say(f"  from {s}")
            for made in ds.get("made_here", []):
                _say(f"  {made['path']}: made here, not downloadable: {made['how']}")
        return 0
    if args.check:
        problems = check(names, root, manifest)
    else:
        fetcher = fetch(names, root, args.mirror, manifest)
        problems = fetcher.problems + check(names, root, manifest) if not fetcher.problems else fetcher.problems
    for p in problems:
        _warn(f"error: {p}")
    if problems:
        _warn(f"{len(problems)} files missing or wrong under {root}")
        return 1
    total = sum(len(manifest["datasets"][n]["files"]) for n in names)
    _say(f"{total} files verified under {root}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
