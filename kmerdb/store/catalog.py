"""The catalog: one LMDB environment of msgpack records describing the database.

Keys and records (all values msgpack):

``format``            int, the on-disk format version (written once)
``config``            :class:`~kmerdb.config.Config` as a dict
``state``             ``{"state": "building"|"ready", "generation": int, "next_genome_id": int,
                      "next_layer_id": int}``
``genomes``           list of genome records, in column order
``partition/PPPPP``   ``{"layers": [layer records]}`` for partition P
``history/NNNNNNNNNN`` one operation: command, arguments, kmerdb version, time, generation
``generation/NNNNNNNNNN`` the data files of a generation that a later commit superseded,
                      kept until a vacuum finds no reader of it (see docs/transactions.md)
``checksums``         map of every other key to the mmh3 x64-128 digest (16 bytes) of its
                      value, rewritten in the same write transaction as the records it covers

A reader checks each record it reads against ``checksums``, so a record edited or damaged
outside kmerdb is a :class:`~kmerdb.errors.CorruptDatabaseError` naming it rather than a
wrong answer.  Catalogs written before checksums existed have no ``checksums`` record:
they are read unchecked, and their first write transaction checksums every record.

Every change is one LMDB write transaction; a reader takes one read transaction and
keeps the :class:`Snapshot` it read, whatever commits later.

LMDB refuses to open one environment twice in a process, so every :class:`Catalog` of
a directory in this process shares one environment, counted by reference and closed
with the last of them.  Handles close their catalog once they have read it, so a
process forked later holds no environment it cannot use.
"""

from __future__ import annotations

import os
import struct
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any

import lmdb
import mmh3
import msgpack

from kmerdb.config import FORMAT_VERSION, Config
from kmerdb.errors import (
    CorruptDatabaseError,
    DatabaseNotFoundError,
    FormatVersionError,
    KmerDBError,
    ReadOnlyError,
)
from kmerdb.store.encodings import since_format
from kmerdb.store.lock import ReaderRegistration
from kmerdb.store.storage import FileRef

#: The format that introduced layers with a minimizer dictionary.
DICTIONARY_FORMAT = 4
#: The format that introduced dictionaries of version 2 (pilot hash functions), which this
#: library writes.
PILOT_DICTIONARY_FORMAT = 6

__all__ = [
    "read_as_reader",
    "CATALOG_DIR",
    "GenomeRecord",
    "ColumnGroup",
    "LayerRecord",
    "HistoryRecord",
    "Snapshot",
    "Catalog",
    "MAX_COUNT",
]

CATALOG_DIR = "catalog"
_MAP_SIZE = 1 << 32  # address space only; the file grows as records are written


def _pack(obj: Any) -> bytes:
    return msgpack.packb(obj, use_bin_type=True)


def _unpack(data: bytes) -> Any:
    return msgpack.unpackb(data, raw=False, strict_map_key=False)


#: The key of the record that holds the checksum of every other record.
CHECKSUMS_KEY = b"checksums"


def _digest(raw: bytes) -> bytes:
    """Checksum of a record's value: mmh3 x64-128, as the data files' (16 bytes)."""
    return mmh3.hash_bytes(raw)


def _read_sums(txn: lmdb.Transaction[bytes], db_path: str) -> dict[bytes, bytes] | None:
    """The ``checksums`` record (key -> digest), or None for a catalog written before them."""
    raw = txn.get(CHECKSUMS_KEY)
    if raw is None:
        return None
    try:
        sums = _unpack(raw)
        if not isinstance(sums, dict) or not all(
            isinstance(k, bytes) and isinstance(v, bytes) and len(v) == 16 for k, v in sums.items()
        ):
            raise ValueError("not a map of keys to 16-byte digests")
    except (ValueError, TypeError, msgpack.UnpackException) as exc:
        raise CorruptDatabaseError(db_path, f"catalog record 'checksums' unreadable: {exc}") from None
    return sums


def _check_sum(sums: dict[bytes, bytes] | None, key: bytes, raw: bytes | None, db_path: str) -> None:
    """Refuse a record whose value is not the one the ``checksums`` record says was written.

    A record the checksums name but that is absent was deleted; a record present but not
    named was added: both are damage as much as an edited value.
    """
    if sums is None:
        return
    expected = sums.get(key)
    if raw is None:
        if expected is not None:
            raise CorruptDatabaseError(db_path, f"catalog record {key.decode()!r} is missing (its checksum is there)")
        return
    if expected is None:
        raise CorruptDatabaseError(db_path, f"catalog record {key.decode()!r} has no checksum: added outside kmerdb")
    if _digest(raw) != expected:
        raise CorruptDatabaseError(
            db_path, f"catalog record {key.decode()!r} does not match its checksum: edited or damaged"
        )


def _get(
    txn: lmdb.Transaction[bytes], key: bytes, db_path: str, sums: dict[bytes, bytes] | None = None
) -> bytes:
    """The value of a record every catalog has, checked against ``sums``; its absence is
    corruption, not a default."""
    raw = txn.get(key)
    _check_sum(sums, key, raw, db_path)
    if raw is None:
        raise CorruptDatabaseError(db_path, f"catalog has no {key.decode()!r} record")
    return raw


#: Upper bound of any count or id a catalog may hold (k-mers, occurrences, ids, generations):
#: larger values are damage, refused before anything is sized by them.
MAX_COUNT = 1 << 62


def _count(value: Any, what: str) -> int:
    """``value`` as a count or id in ``[0, MAX_COUNT]``; ValueError naming ``what`` otherwise."""
    if type(value) is not int or not 0 <= value <= MAX_COUNT:
        raise ValueError(f"{what} {value!r} is not an integer from 0 to 2**62")
    return value


def _min_count(value: Any) -> int:
    if _count(value, "min_count") < 1:
        raise ValueError(f"min_count {value!r} is below 1")
    return value


def _str(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{what} {value!r} is not a string")
    return value


def _list(value: Any, what: str) -> list:
    if not isinstance(value, list):
        raise ValueError(f"{what} is a {type(value).__name__}, not a list")
    return value


def _map(value: Any, what: str) -> dict:
    if not isinstance(value, dict):
        raise ValueError(f"{what} is a {type(value).__name__}, not a map")
    return value


@dataclass(frozen=True)
class GenomeRecord:
    """A genome (column) of the index.

    Attributes
    ----------
    id : int
        Stable id, never reused within a database; column groups refer to it.
    label : str
        Column label.
    sources : tuple of str
        Input files it was read from (record id appended as ``path#record`` when per record).
    n_kmers : int
        Distinct canonical k-mers.
    total : int
        k-mer occurrences in its inputs (equals ``n_kmers`` when occurrences were not kept).
    spectrum : tuple of (int, int)
        (count, number of distinct k-mers with that count), ascending counts.  Counted from
        the inputs, so it keeps the counts below ``min_count`` too.
    min_count : int
        k-mers seen fewer times in the inputs were not indexed for this genome (1: all were);
        ``n_kmers`` and ``total`` count only the indexed ones.
    """

    id: int
    label: str
    sources: tuple[str, ...]
    n_kmers: int
    total: int
    spectrum: tuple[tuple[int, int], ...] = ()
    min_count: int = 1

    def to_record(self) -> dict:
        return {
            "id": self.id,
            "label": self.label,
            "sources": list(self.sources),
            "n_kmers": self.n_kmers,
            "total": self.total,
            "spectrum": [list(p) for p in self.spectrum],
            # written only when it filtered: records of unfiltered genomes stay as they were
            **({"min_count": self.min_count} if self.min_count != 1 else {}),
        }

    @classmethod
    def from_record(cls, rec: dict) -> GenomeRecord:
        """Read a genome record; ValueError on a wrong type or a value out of range."""
        rec = _map(rec, "a genome record")
        spectrum = _list(rec.get("spectrum", []), "spectrum")
        for pair in spectrum:
            if not isinstance(pair, list) or len(pair) != 2:
                raise ValueError(f"spectrum entry {pair!r} is not a [count, k-mers] pair")
            _count(pair[0], "spectrum count")
            _count(pair[1], "spectrum k-mers")
        return cls(
            _count(rec["id"], "genome id"),
            _str(rec["label"], "label"),
            tuple(_str(x, "source") for x in _list(rec["sources"], "sources")),
            _count(rec["n_kmers"], "n_kmers"),
            _count(rec["total"], "total"),
            tuple((c, n) for c, n in spectrum),
            _min_count(rec.get("min_count", 1)),
        )


@dataclass(frozen=True)
class ColumnGroup:
    """Columns of some genomes in one layer, slot-major.

    ``kind`` is ``"presence"`` (uint8 rows of packed bits, genome i of the group at bit i,
    most significant bit first) or ``"counts"`` (one unsigned integer column per genome).
    """

    genome_ids: tuple[int, ...]
    kind: str
    file: FileRef

    def to_record(self) -> dict:
        return {"genome_ids": list(self.genome_ids), "kind": self.kind, "file": self.file.to_record()}

    @classmethod
    def from_record(cls, rec: dict) -> ColumnGroup:
        """Read a column group record; ValueError on a wrong type or a value out of range."""
        rec = _map(rec, "a column group")
        ids = tuple(_count(g, "genome id") for g in _list(rec["genome_ids"], "genome_ids"))
        if not ids:
            raise ValueError("a column group holds no genome")
        return cls(ids, _str(rec["kind"], "group kind"), FileRef.from_record(rec["file"]))


@dataclass(frozen=True)
class LayerRecord:
    """An immutable set of k-mers inside a partition.

    Attributes
    ----------
    id : int
        Unique within the database.
    n_kmers : int
        Number of k-mers (= MPHF slots).
    files : dict of str to FileRef
        Its structures by role: ``"mphf"``, ``"evidence"`` and others.
    groups : tuple of ColumnGroup
        Its column groups; together they hold one column per genome of the index.
    generation : int
        Generation that created it.
    """

    id: int
    n_kmers: int
    files: dict[str, FileRef] = field(default_factory=dict)
    groups: tuple[ColumnGroup, ...] = ()
    generation: int = 0

    def to_record(self) -> dict:
        return {
            "id": self.id,
            "n_kmers": self.n_kmers,
            "files": {role: ref.to_record() for role, ref in self.files.items()},
            "groups": [g.to_record() for g in self.groups],
            "generation": self.generation,
        }

    @classmethod
    def from_record(cls, rec: dict) -> LayerRecord:
        """Read a layer record; ValueError on a wrong type or a value out of range."""
        rec = _map(rec, "a layer record")
        layer_id = _count(rec["id"], "layer id")
        try:
            files = {_str(role, "file role"): FileRef.from_record(r) for role, r in _map(rec["files"], "files").items()}
            groups = tuple(ColumnGroup.from_record(g) for g in _list(rec["groups"], "groups"))
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"layer {layer_id}: {exc}") from None
        return cls(
            layer_id, _count(rec["n_kmers"], "n_kmers"), files, groups, _count(rec.get("generation", 0), "generation")
        )

    def all_files(self) -> list[FileRef]:
        return list(self.files.values()) + [g.file for g in self.groups]


@dataclass(frozen=True)
class HistoryRecord:
    """One committed operation."""

    seq: int
    command: str
    args: dict
    version: str
    time: float
    generation: int

    def to_record(self) -> dict:
        return {
            "seq": self.seq,
            "command": self.command,
            "args": self.args,
            "version": self.version,
            "time": self.time,
            "generation": self.generation,
        }

    @classmethod
    def from_record(cls, rec: dict) -> HistoryRecord:
        """Read a history record; ValueError on a wrong type or a value out of range."""
        rec = _map(rec, "a history record")
        when = rec["time"]
        if type(when) not in (int, float):
            raise ValueError(f"time {when!r} is not a number")
        return cls(
            _count(rec["seq"], "seq"),
            _str(rec["command"], "command"),
            _map(rec.get("args", {}), "args"),
            _str(rec["version"], "version"),
            float(when),
            _count(rec["generation"], "generation"),
        )


@dataclass(frozen=True)
class Snapshot:
    """Everything the catalog says at one generation."""

    format_version: int
    config: Config
    state: str
    generation: int
    next_genome_id: int
    next_layer_id: int
    genomes: tuple[GenomeRecord, ...]
    partitions: tuple[tuple[LayerRecord, ...], ...]

    @property
    def labels(self) -> tuple[str, ...]:
        return tuple(g.label for g in self.genomes)

    def all_files(self) -> list[FileRef]:
        return [f for layers in self.partitions for layer in layers for f in layer.all_files()]

    def file_paths(self) -> set[str]:
        """Relative paths of every data file the snapshot names."""
        return {ref.path for ref in self.all_files()}

    def with_changes(self, **changes: Any) -> Snapshot:
        return replace(self, **changes)


def _partition_key(p: int) -> bytes:
    return f"partition/{p:05d}".encode()


def _generation_key(generation: int) -> bytes:
    return f"generation/{generation:010d}".encode()


@dataclass
class _EnvEntry:
    """An environment shared by the catalogs of one directory in one process."""

    env: lmdb.Environment
    references: int
    pid: int  # the process that opened it: another one inherited it through fork
    writable: bool


# One environment per catalog directory and process, by real path.
_ENVS: dict[str, _EnvEntry] = {}
_ENVS_LOCK = threading.Lock()
# Environments inherited through fork: never used nor closed here (closing would clear the
# parent's reader slots), only kept from the garbage collector.
_INHERITED: list[_EnvEntry] = []


# LMDB's meta pages (pages 0 and 1, see lmdb's mdb.c): a 16-byte page header, then
# mm_magic, mm_version (uint32), mm_address, mm_mapsize, two MDB_db records of 48 bytes
# (the first one's md_pad holds the page size), mm_last_pg and mm_txnid; native byte order.
_LMDB_MAGIC = 0xBEEFC0DE
_META = struct.Struct("=II8x8xI44x48xQQ")


def _check_catalog_size(path: str) -> None:
    """Refuse a ``data.mdb`` shorter than its own meta pages say it is.

    LMDB maps the file and reads its pages from the map: a page past the end of a
    truncated file is a SIGBUS that kills the process, which no ``except`` can catch.
    Two meta pages (the first 8 KiB or so) tell the page size and the last page in use
    of each of the last two commits; the newer one must fit in the file.
    """
    try:
        with open(path, "rb") as fh:
            head = fh.read(16 + _META.size)
            size = os.fstat(fh.fileno()).st_size
            metas = []
            if len(head) == 16 + _META.size:
                magic, _, psize, last, txnid = _META.unpack_from(head, 16)
                if magic == _LMDB_MAGIC and 512 <= psize <= 1 << 16 and psize & (psize - 1) == 0:
                    metas.append((txnid, last))
                    fh.seek(psize)
                    second = fh.read(16 + _META.size)
                    if len(second) == 16 + _META.size:
                        magic2, _, _, last2, txnid2 = _META.unpack_from(second, 16)
                        if magic2 == _LMDB_MAGIC:
                            metas.append((txnid2, last2))
    except OSError as exc:
        raise CorruptDatabaseError(path, f"cannot read the catalog: {exc.strerror}") from None
    if not metas:
        raise CorruptDatabaseError(path, "not an LMDB catalog, or its header is damaged")
    _, last_page = max(metas)
    needed = (last_page + 1) * psize
    if size < needed or size < 2 * psize:
        raise CorruptDatabaseError(
            path, f"catalog is truncated: {size} bytes, its last commit needs {max(needed, 2 * psize)}"
        )


def _acquire_env(cat_dir: str, readonly: bool, create: bool = False) -> lmdb.Environment:
    key = os.path.realpath(cat_dir)
    with _ENVS_LOCK:
        entry = _ENVS.get(key)
        inherited = entry is not None and entry.pid != os.getpid()
        if inherited:
            _INHERITED.append(_ENVS.pop(key))
            entry = None
        if entry is not None:
            if not readonly and not entry.writable:
                raise ReadOnlyError(f"{cat_dir}: catalog is open read-only in this process (directory not writable)")
            entry.references += 1
            return entry.env
        writable = create or not readonly or os.access(cat_dir, os.W_OK)
        try:
            try:
                env = lmdb.open(cat_dir, map_size=_MAP_SIZE, subdir=True, readonly=not writable, lock=True, create=create)
            except lmdb.Error:
                if writable:
                    raise
                # a directory this user cannot write (another user's, a read-only mount): LMDB
                # cannot open lock.mdb to take a reader slot, so read without its lock table;
                # the read is one short transaction, and writers of such a database are rare
                env = lmdb.open(cat_dir, map_size=_MAP_SIZE, subdir=True, readonly=True, lock=False)
        except lmdb.Error:
            if inherited:
                raise KmerDBError(
                    f"{cat_dir}: the catalog was being read by the parent process when this one forked; "
                    "open the database again once that read is over, or start processes with 'spawn'"
                ) from None
            raise
        _ENVS[key] = _EnvEntry(env, 1, os.getpid(), writable)
        return env


def _release_env(env: lmdb.Environment) -> None:
    with _ENVS_LOCK:
        for key, entry in list(_ENVS.items()):
            if entry.env is env:
                entry.references -= 1
                if entry.references <= 0:
                    del _ENVS[key]
                    env.close()
                return


class CatalogWriter:
    """Puts records inside one open LMDB write transaction."""

    def __init__(self, txn: lmdb.Transaction[bytes], db_path: str) -> None:
        self.txn = txn
        self.db_path = db_path
        # keys put (True) or deleted (False) in this transaction: their checksums change
        self._changed: dict[bytes, bool] = {}

    def _put(self, key: bytes, value: bytes) -> None:
        self.txn.put(key, value)
        self._changed[key] = True

    def _delete(self, key: bytes) -> None:
        self.txn.delete(key)
        self._changed[key] = False

    def seal(self) -> None:
        """Write the ``checksums`` record for this transaction's changes (in the transaction).

        Called once, last, by :meth:`Catalog.write`.  A catalog without checksums (written
        before them) gets the checksum of every record, so that from this commit on every
        record is covered.
        """
        sums = _read_sums(self.txn, self.db_path)
        if sums is None:
            sums = {}
            with self.txn.cursor() as cur:
                for key, value in cur:
                    if key != CHECKSUMS_KEY:
                        sums[bytes(key)] = _digest(bytes(value))
        else:
            for changed, put in self._changed.items():
                current = self.txn.get(changed) if put else None
                if current is None:
                    sums.pop(changed, None)
                else:
                    sums[changed] = _digest(current)
        self.txn.put(CHECKSUMS_KEY, _pack(sums))
        self._changed.clear()

    def put_state(self, state: str, generation: int, next_genome_id: int, next_layer_id: int) -> None:
        self._put(
            b"state",
            _pack(
                {
                    "state": state,
                    "generation": generation,
                    "next_genome_id": next_genome_id,
                    "next_layer_id": next_layer_id,
                }
            ),
        )

    def put_genomes(self, genomes: Iterable[GenomeRecord]) -> None:
        self._put(b"genomes", _pack([g.to_record() for g in genomes]))

    def put_partition(self, p: int, layers: Iterable[LayerRecord]) -> None:
        self._put(_partition_key(p), _pack({"layers": [layer.to_record() for layer in layers]}))

    def _gains_layers(self, snap: Snapshot) -> bool:
        """Whether ``snap`` holds a layer that the stored partition records do not."""
        for p, layers in enumerate(snap.partitions):
            raw = self.txn.get(_partition_key(p))
            stored = {LayerRecord.from_record(r).id for r in _unpack(raw)["layers"]} if raw is not None else set()
            if any(rec.id not in stored for rec in layers):
                return True
        return False

    def _gains_dictionaries(self, snap: Snapshot) -> bool:
        """Whether ``snap`` holds a dictionary file that the stored partition records do not
        (this library wrote it: a reindex to exact writes one for a layer it keeps)."""
        for p, layers in enumerate(snap.partitions):
            raw = self.txn.get(_partition_key(p))
            records = [LayerRecord.from_record(r) for r in _unpack(raw)["layers"]] if raw is not None else []
            stored = {rec.files["dictionary"].path for rec in records if "dictionary" in rec.files}
            if any("dictionary" in rec.files and rec.files["dictionary"].path not in stored for rec in layers):
                return True
        return False

    def put_snapshot(self, snap: Snapshot) -> None:
        """Write every record of ``snap`` except the format (fixed at creation).

        The config is written too: a reindex changes its evidence, fp_bits and z.
        """
        self._put(b"config", _pack(snap.config.to_record()))
        # a database of an older format that gains a column group of a newer encoding, a
        # layer this library wrote (unitig arrays of the current format) or a minimizer
        # dictionary (format 4; a new one, also written by a reindex, is of version 2: format
        # 6), is marked with the format that introduced it, so older libraries refuse it clearly
        need = max((since_format(g.kind) for layers in snap.partitions for rec in layers for g in rec.groups), default=1)
        if any("dictionary" in rec.files for layers in snap.partitions for rec in layers):
            need = max(need, DICTIONARY_FORMAT)
            if need < PILOT_DICTIONARY_FORMAT and self._gains_dictionaries(snap):
                need = PILOT_DICTIONARY_FORMAT
        if need < FORMAT_VERSION and self._gains_layers(snap):
            need = FORMAT_VERSION
        raw = self.txn.get(b"format")
        if raw is None or not isinstance(_unpack(raw), int) or _unpack(raw) < need:
            self._put(b"format", _pack(need))
        self.put_state(snap.state, snap.generation, snap.next_genome_id, snap.next_layer_id)
        self.put_genomes(snap.genomes)
        for p, layers in enumerate(snap.partitions):
            self.put_partition(p, layers)

    def current_generation(self) -> int:
        """Generation of the state record, as this transaction sees it."""
        return int(_unpack(_get(self.txn, b"state", self.db_path))["generation"])

    def has_generation(self, generation: int) -> bool:
        return self.txn.get(_generation_key(generation)) is not None

    def put_generation(self, generation: int, paths: Iterable[str]) -> None:
        """Record the data files of a superseded generation (for vacuum)."""
        rec = {"generation": int(generation), "files": sorted(set(paths)), "time": time.time()}
        self._put(_generation_key(generation), _pack(rec))

    def delete_generation(self, generation: int) -> None:
        self._delete(_generation_key(generation))

    def add_history(self, command: str, args: dict, generation: int) -> None:
        from kmerdb import __version__

        last = 0
        with self.txn.cursor() as cur:
            # b"history0" sorts right after every b"history/..." key; step back from it
            moved = cur.prev() if cur.set_range(b"history0") else cur.last()
            if moved and cur.key().startswith(b"history/"):
                last = int(cur.key()[len(b"history/") :])
        rec = HistoryRecord(last + 1, command, args, __version__, time.time(), generation)
        self._put(f"history/{rec.seq:010d}".encode(), _pack(rec.to_record()))


class Catalog:
    """The LMDB environment of one database."""

    def __init__(self, db_path: str, env: lmdb.Environment, readonly: bool) -> None:
        self.db_path = db_path
        self.env: lmdb.Environment | None = env  # None once closed
        self.readonly = readonly

    def _env(self) -> lmdb.Environment:
        if self.env is None:
            raise KmerDBError(f"{self.db_path}: the catalog is closed")
        return self.env

    @classmethod
    def create(cls, db_path: str, config: Config) -> Catalog:
        """Create the catalog of a new database, in state ``building``."""
        env = _acquire_env(os.path.join(db_path, CATALOG_DIR), readonly=False, create=True)
        cat = cls(db_path, env, readonly=False)
        with env.begin(write=True) as txn:
            w = CatalogWriter(txn, db_path)
            w._put(b"format", _pack(FORMAT_VERSION))
            w._put(b"config", _pack(config.to_record()))
            w.put_state("building", 0, 0, 0)
            w.put_genomes([])
            w.seal()
        return cat

    @classmethod
    def open(cls, db_path: str, readonly: bool = True) -> Catalog:
        """Open an existing catalog; checks the format version."""
        cat_dir = os.path.join(db_path, CATALOG_DIR)
        if not os.path.isdir(db_path):
            raise DatabaseNotFoundError(db_path, "no such database")
        if not os.path.exists(os.path.join(cat_dir, "data.mdb")):
            raise DatabaseNotFoundError(db_path, "not a kmerdb database (no catalog)")
        _check_catalog_size(os.path.join(cat_dir, "data.mdb"))
        try:
            env = _acquire_env(cat_dir, readonly=readonly)
        except lmdb.Error as exc:
            raise DatabaseNotFoundError(db_path, f"cannot open the catalog: {exc}") from None
        cat = cls(db_path, env, readonly)
        with env.begin() as txn:
            raw = txn.get(b"format")
        if raw is None:
            cat.close()
            raise DatabaseNotFoundError(db_path, "not a kmerdb database (catalog has no format record)")
        version = _unpack(raw)
        if not isinstance(version, int) or version > FORMAT_VERSION:
            cat.close()
            raise FormatVersionError(db_path, version if isinstance(version, int) else -1, FORMAT_VERSION)
        return cat

    def read(self) -> Snapshot:
        """Read the whole catalog in one read transaction."""
        key = b"format"  # the record being read, named in errors
        try:
            with self._env().begin() as txn:
                sums = _read_sums(txn, self.db_path)
                fmt = _count(_unpack(_get(txn, key, self.db_path, sums)), "format version")
                key = b"config"
                config = Config.from_record(_map(_unpack(_get(txn, key, self.db_path, sums)), "config"))
                key = b"state"
                state = _map(_unpack(_get(txn, key, self.db_path, sums)), "state")
                if state["state"] not in ("building", "ready"):
                    raise ValueError(f"state {state['state']!r} is not 'building' or 'ready'")
                generation = _count(state["generation"], "generation")
                next_genome_id = _count(state.get("next_genome_id", 0), "next_genome_id")
                next_layer_id = _count(state.get("next_layer_id", 0), "next_layer_id")
                key = b"genomes"
                # msgpack bounds every container by the bytes it holds (a list header claiming
                # 2**32 records in a short value is refused), so this is linear in the record
                records = _list(_unpack(_get(txn, key, self.db_path, sums)), "genomes")
                genomes = tuple(GenomeRecord.from_record(r) for r in records)
                parts = []
                # n_partitions is bounded by Config (at most 65536)
                for p in range(config.n_partitions):
                    key = _partition_key(p)
                    raw = txn.get(key)
                    _check_sum(sums, key, raw, self.db_path)
                    layers = _list(_map(_unpack(raw), "partition")["layers"], "layers") if raw is not None else []
                    recs = tuple(LayerRecord.from_record(r) for r in layers)
                    for rec in recs:
                        if rec.generation > generation:
                            raise ValueError(
                                f"layer {rec.id}: generation {rec.generation} is after the catalog's {generation}"
                            )
                    parts.append(recs)
                # a partition record past the config's count: the config's n_partitions was
                # changed (it is fixed at creation), and k-mers would be looked up in the wrong
                # partition; one cursor step, so old catalogs without checksums are checked too
                with txn.cursor() as cur:
                    extra = _partition_key(config.n_partitions)
                    if cur.set_range(extra) and cur.key().startswith(b"partition/"):
                        key = bytes(cur.key())
                        raise ValueError(
                            f"the config has {config.n_partitions} partitions, the catalog holds {key.decode()}"
                        )
        except (TypeError, KeyError, msgpack.UnpackException, ValueError) as exc:
            what = f"missing field {exc}" if isinstance(exc, KeyError) else str(exc)
            raise CorruptDatabaseError(self.db_path, f"catalog record {key.decode()!r} unreadable: {what}") from None
        except lmdb.Error as exc:
            raise KmerDBError(f"{self.db_path}: catalog read failed: {exc}") from None
        return Snapshot(fmt, config, state["state"], generation, next_genome_id, next_layer_id, genomes, tuple(parts))

    def generation(self) -> int:
        """The committed generation (one small read)."""
        with self._env().begin() as txn:
            sums = _read_sums(txn, self.db_path)
            try:
                return _count(
                    _map(_unpack(_get(txn, b"state", self.db_path, sums)), "state")["generation"], "generation"
                )
            except (TypeError, KeyError, msgpack.UnpackException, ValueError) as exc:
                raise CorruptDatabaseError(self.db_path, f"catalog record 'state' unreadable: {exc}") from None

    def generations(self) -> dict[int, list[str]]:
        """Superseded generations still recorded: generation -> relative paths of its data files."""
        out: dict[int, list[str]] = {}
        with self._env().begin() as txn, txn.cursor() as cur:
            sums = _read_sums(txn, self.db_path)
            if cur.set_range(b"generation/"):
                for key, value in cur:
                    if not key.startswith(b"generation/"):
                        break
                    _check_sum(sums, bytes(key), bytes(value), self.db_path)
                    try:
                        rec = _map(_unpack(value), "generation record")
                        files = [_str(f, "file path") for f in _list(rec["files"], "files")]
                        out[_count(rec["generation"], "generation")] = files
                    except (TypeError, KeyError, msgpack.UnpackException, ValueError) as exc:
                        raise CorruptDatabaseError(
                            self.db_path, f"catalog record {key.decode()!r} unreadable: {exc}"
                        ) from None
        return out

    def history(self) -> list[HistoryRecord]:
        """All operations, oldest first."""
        out: list[HistoryRecord] = []
        with self._env().begin() as txn, txn.cursor() as cur:
            sums = _read_sums(txn, self.db_path)
            if cur.set_range(b"history/"):
                for key, value in cur:
                    if not key.startswith(b"history/"):
                        break
                    _check_sum(sums, bytes(key), bytes(value), self.db_path)
                    try:
                        out.append(HistoryRecord.from_record(_unpack(value)))
                    except (TypeError, KeyError, msgpack.UnpackException, ValueError) as exc:
                        raise CorruptDatabaseError(
                            self.db_path, f"catalog record {key.decode()!r} unreadable: {exc}"
                        ) from None
        return out

    @contextmanager
    def write(self) -> Iterator[CatalogWriter]:
        """One LMDB write transaction: commits when the block ends, aborts on exception."""
        if self.readonly:
            raise ReadOnlyError(f"{self.db_path}: catalog opened read-only")
        try:
            with self._env().begin(write=True) as txn:
                writer = CatalogWriter(txn, self.db_path)
                yield writer
                writer.seal()  # same transaction: records and their checksums commit together
        except lmdb.Error as exc:
            raise KmerDBError(f"{self.db_path}: catalog write failed: {exc}") from None

    def close(self) -> None:
        """Release the environment (closed with the last catalog of this directory)."""
        if self.env is not None:
            _release_env(self.env)
            self.env = None


def read_as_reader(path: str) -> tuple[Snapshot, ReaderRegistration]:
    """The newest snapshot of a database, read as a registered reader (as every handle reads).

    The registration is made (as between generations) before the catalog is read, so that a
    vacuum never removes the files of the generation about to be read; it then names the
    generation read.  The caller closes the registration when it no longer reads.
    """
    catalog = Catalog.open(path, readonly=True)
    registration = None
    try:
        registration = ReaderRegistration(path)
        snapshot = catalog.read()
    except BaseException:
        if registration is not None:
            registration.close()
        raise
    finally:
        # the catalog is read: release it, so that no LMDB environment outlives the read
        catalog.close()
    registration.set(snapshot.generation)
    return snapshot, registration
