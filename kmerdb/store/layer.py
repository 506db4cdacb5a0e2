"""Layers: immutable k-mer sets inside a partition, memory-mapped.

A layer of n k-mers is
- its k-mers as the maximal unitigs of their de Bruijn graph, 2 bits per base
  (role ``"unitigs"``, :mod:`kmerdb.unitigs`): the one copy of the k-mers, read by
  everything that iterates them;
- what finds a key's slot in [0, n), one of
  - with exact evidence (format 4): a minimizer dictionary (role ``"dictionary"``,
    :mod:`kmerdb.core.dictionary`), whose slots are the unitig orders of the k-mers;
  - with approximate evidence, and in exact layers of formats 1-3: an MPHF mapping each
    k-mer to a slot (role ``"mphf"``, :mod:`kmerdb.mphf`) and evidence per slot that
    rejects keys that are not members, since the MPHF maps any key somewhere (role
    ``"evidence"``, :mod:`kmerdb.core.evidence`, one registered kind per
    ``Config.evidence``): a B-bit fingerprint (approx) or the unitig order of the slot's
    k-mer (exact, formats 1-3);
- column groups whose rows are the slots, each read and written through the column
  encoding its catalog kind names (:mod:`kmerdb.store.encodings`).

Files of a layer are written once by :func:`write_layer` (again by a reindex that changes
its evidence) and only read afterwards.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterator, Mapping

import numpy as np

from kmerdb.config import Config
from kmerdb.core.colours import SparseRows
from kmerdb.core.dictionary import MinimizerDictionary, build_dictionary
from kmerdb.core.evidence import Evidence, evidence_for
from kmerdb.core.kmers import Scratch
from kmerdb.core.mphf import MPHF
from kmerdb.core.unitigs import UnitigSet, build_unitigs
from kmerdb.errors import CorruptDatabaseError
from kmerdb.store.catalog import ColumnGroup, LayerRecord
from kmerdb.store.classes import reordered, slot_ordered
from kmerdb.store.encodings import ColumnEncoding, Placement, SlotOrdinals, choose_encoding, open_group
from kmerdb.store.storage import FileRef, data_file_checksum, load_array, save_array

__all__ = [
    "Layer",
    "write_layer",
    "write_group",
    "rewrite_group",
    "write_evidence",
    "write_lookup",
    "layer_prefix",
    "groups_by_slot",
]


def layer_prefix(partition: int, layer_id: int) -> str:
    """Relative path prefix of a layer's files."""
    return f"data/p{partition:05d}/L{layer_id:07d}"


def write_evidence(
    root: str,
    prefix: str,
    generation: int,
    config: Config,
    keys: np.ndarray,
    slots: np.ndarray,
    ordinals: np.ndarray,
) -> FileRef:
    """Write the evidence file of a layer, of the kind ``config`` asks for.

    Parameters
    ----------
    root, prefix : str
        Database directory and the layer's path prefix.
    generation : int
        Generation that writes it (part of the file name: a reindex writes a new file).
    config : Config
        Evidence kind and fingerprint bits.
    keys, slots, ordinals : ndarray
        Each k-mer, its MPHF slot and its unitig order (rank in the layer's unitig sequence).
    """
    scheme = evidence_for(config)
    data = scheme.encode(keys, slots, ordinals)
    relpath = f"{prefix}.g{generation:07d}.{scheme.tag}.evidence.npy"
    return _reuse(root, relpath, data) or save_array(root, relpath, data)


def _npy_size(array: np.ndarray) -> int:
    """Bytes of ``array`` written as an .npy file."""
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, np.lib.format.header_data_from_array_1_0(array))
    return header.tell() + array.nbytes


def write_layer(
    root: str,
    partition: int,
    layer_id: int,
    generation: int,
    keys: np.ndarray,
    groups: list[tuple[tuple[int, ...], SparseRows | np.ndarray]],
    config: Config,
) -> LayerRecord:
    """Build and write a layer: unitigs, dictionary (or MPHF and fingerprints), column groups.

    Parameters
    ----------
    root : str
        Database directory.
    partition, layer_id, generation : int
        Where it goes and who made it.
    keys : ndarray of uint64
        The layer's distinct canonical k-mers (sorted or not; sorted is faster).
    groups : list of (genome ids, rows)
        Column groups to write; each :class:`~kmerdb.core.colours.SparseRows` has one row
        per key (in ``keys`` order) over the genome ids (column j = ``ids[j]``), with counts
        when ``config.counts`` (a dense boolean or count matrix is accepted too).
    config : Config
        The index configuration (k, evidence kind, fingerprint bits).

    Returns
    -------
    LayerRecord
        Ready to be committed to the catalog.
    """
    keys = np.ascontiguousarray(keys, dtype=np.uint64)
    prefix = layer_prefix(partition, layer_id)
    sparse = [(ids, _group_rows(rows, config)) for ids, rows in groups]
    # With exact evidence and one group that may take colour classes, the unitigs are ordered
    # by the class of their first k-mer: the group then stores runs of classes along the
    # unitigs instead of a class id per slot (see kmerdb.store.classes).
    classes = None
    if config.evidence == "exact" and config.colours != "dense" and len(sparse) == 1 and keys.size:
        classes = sparse[0][1].classes()
    branches: list[np.ndarray] | None = [] if classes is not None else None
    if keys.size > 1 and not (keys[1:] > keys[:-1]).all():
        perm = np.argsort(keys)
        by_class = classes[0][perm] if classes is not None else None
        unitigs, sorted_ordinals = build_unitigs(keys[perm], config.k, by_class, branches)
        ordinals = np.empty_like(sorted_ordinals)
        ordinals[perm] = sorted_ordinals
        if branches:
            branches[0] = perm.take(branches[0])
    else:
        unitigs, ordinals = build_unitigs(keys, config.k, classes[0] if classes is not None else None, branches)
    unitig_ref = save_array(root, f"{prefix}.unitigs.npy", unitigs)
    files, slots = write_lookup(root, prefix, generation, config, unitigs, keys, ordinals)
    placement = None
    if classes is not None:
        placement = Placement(ordinals, classes, class_joins(classes[0], branches[0] if branches else None))
    return LayerRecord(
        layer_id,
        int(keys.size),
        {"unitigs": unitig_ref, **files},
        tuple(write_group(root, prefix, generation, ids, rows, slots, config, placement) for ids, rows in sparse),
        generation,
    )


def class_joins(row_class: np.ndarray, branches: np.ndarray | None) -> np.ndarray:
    """The distinct pairs of classes (smaller id first) of k-mer pairs ``branches`` (row
    indices, shape (2, B)): :attr:`~kmerdb.store.encodings.Placement.joins`."""
    if branches is None or not branches.size:
        return np.zeros((2, 0), dtype=np.int64)
    a, b = row_class.take(branches[0]), row_class.take(branches[1])
    lo, hi = np.minimum(a, b), np.maximum(a, b)
    differ = lo != hi
    c = int(hi.max()) + 1 if hi.size else 1
    pairs = np.unique(lo[differ].astype(np.int64) * c + hi[differ])
    return np.stack([pairs // c, pairs % c])


def write_lookup(
    root: str,
    prefix: str,
    generation: int,
    config: Config,
    unitigs: np.ndarray,
    keys: np.ndarray,
    ordinals: np.ndarray,
) -> tuple[dict[str, FileRef], np.ndarray]:
    """Write what finds the slots of a layer's k-mers, for the evidence ``config`` asks for.

    Exact evidence: a minimizer dictionary (role ``"dictionary"``), whose slots are the unitig
    orders.  Approximate evidence: an MPHF and fingerprints (roles ``"mphf"``, ``"evidence"``).

    Parameters
    ----------
    root, prefix : str
        Database directory and the layer's path prefix.
    generation : int
        Generation that writes the files (a reindex writes new ones).
    config : Config
        k, m, the evidence kind and fingerprint bits.
    unitigs : ndarray of uint64
        The layer's unitig array.
    keys, ordinals : ndarray
        Each k-mer and its unitig order.

    Returns
    -------
    (dict of role to FileRef, ndarray of int64)
        The files and the slot of each key.
    """
    if config.evidence == "exact":
        name = f"{prefix}.g{generation:07d}.dictionary.npy"
        ref = _reuse(root, name, data := build_dictionary(unitigs, config.m)) or save_array(root, name, data)
        return {"dictionary": ref}, np.asarray(ordinals, dtype=np.int64)
    mphf, slots = MPHF.build_with_slots(keys)
    name = f"{prefix}.g{generation:07d}.mphf.npy"
    data = mphf.to_array()
    files = {
        "mphf": _reuse(root, name, data) or save_array(root, name, data),
        "evidence": write_evidence(root, prefix, generation, config, keys, slots, ordinals),
    }
    return files, slots


def _reuse(root: str, relpath: str, data: np.ndarray) -> FileRef | None:
    """The file at ``relpath`` when an earlier step of the same uncommitted generation wrote
    it already (a transaction that reindexes back and forth): its content is a function of
    the layer and the configuration."""
    if not os.path.exists(os.path.join(root, relpath)):
        return None
    nbytes, checksum = data_file_checksum(root, relpath)
    return FileRef(relpath, nbytes, checksum) if nbytes == _npy_size(data) else None


def _group_rows(rows: SparseRows | np.ndarray, config: Config) -> SparseRows:
    """A group's rows as sparse rows, counts dropped from a presence index."""
    if not isinstance(rows, SparseRows):
        rows = SparseRows.from_dense(rows)
    if not config.counts and rows.counts is not None:
        rows = rows.presence()
    return rows


def write_group(
    root: str,
    prefix: str,
    generation: int,
    genome_ids: tuple[int, ...],
    rows: SparseRows | np.ndarray,
    slots: np.ndarray,
    config: Config,
    placement: Placement | None = None,
    order: str = "",
) -> ColumnGroup:
    """Write one column group, in the encoding ``config`` asks for (or the smaller one, see
    :func:`~kmerdb.store.encodings.choose_encoding`); ``rows`` are in key order and ``slots``
    maps them to slots.  With the ``placement`` of a new layer's k-mers, colour classes are
    laid out in unitig order.  ``order`` names the slot order in the file name when one
    generation may write the group in two orders (a transaction that reindexes back and
    forth); a file of that name is then the same group, written earlier, and is reused."""
    rows = _group_rows(rows, config)
    slots = np.asarray(slots, dtype=np.int64)
    if rows.n > 1 and (config.counts or config.colours == "dense"):
        # rows in slot order once, whichever encodings choose_encoding tries: counts are kept
        # by slot in either family (presence classes need only their ids by slot or by run,
        # and a large layer of many genomes would pay a copy of every row for nothing)
        row_at = np.empty(rows.n, dtype=np.int64)
        row_at[slots] = np.arange(rows.n, dtype=np.int64)
        rows = rows.take(row_at)
        if placement is not None:
            classes = placement.classes
            placement = Placement(
                np.asarray(placement.ordinals).take(row_at),
                (classes[0].take(row_at), classes[1]) if classes is not None else None,
                placement.joins,
            )
        slots = np.arange(rows.n, dtype=np.int64)
    encoding, data = choose_encoding(config, rows, slots, placement)
    name = f"{prefix}.g{generation:07d}-{genome_ids[0]}{'.' + order if order else ''}.{encoding.kind}.npy"
    ref = (_reuse(root, name, data) if order else None) or save_array(root, name, data)
    return ColumnGroup(tuple(int(g) for g in genome_ids), encoding.kind, ref)


def rewrite_group(
    root: str,
    prefix: str,
    generation: int,
    record: ColumnGroup,
    opened: ColumnEncoding,
    old_slots: np.ndarray,
    new_slots: np.ndarray,
    config: Config,
    placed: bool,
) -> ColumnGroup:
    """A column group of a layer whose slots change, written in the new slot order (a file of
    ``generation``, named by that order): the same rows.

    Colour classes are reordered as they are (ids and counts, tables kept; in unitig order when
    ``placed``), without expanding rows; a dense group, small by construction, is written again
    from its rows (``opened`` must then map the group's genomes to database columns).

    Parameters
    ----------
    old_slots, new_slots : ndarray of int64
        The old and the new slot of each k-mer of the layer, in one order.
    """
    order = "unitig-order" if config.evidence == "exact" else "mphf-order"
    if opened.family == "classes":
        kind, data = reordered(opened, old_slots, new_slots, placed)
        name = f"{prefix}.g{generation:07d}-{record.genome_ids[0]}.{order}.{kind}.npy"
        return ColumnGroup(record.genome_ids, kind, _reuse(root, name, data) or save_array(root, name, data))
    rows = opened.rows(old_slots)  # over database columns: back to the group's own
    local = np.full(rows.n_columns, -1, dtype=np.int64)
    local[opened.columns[opened.keep]] = opened.keep
    rows = rows.remap(local, len(record.genome_ids))
    return write_group(root, prefix, generation, record.genome_ids, rows, new_slots, config, None, order)


def groups_by_slot(root: str, prefix: str, generation: int, layer: Layer) -> tuple[ColumnGroup, ...]:
    """The layer's column groups with every unitig-ordered one rewritten by slot (new files of
    ``generation``): what the layer keeps when its evidence stops being exact, since those
    groups find a slot's class through its exact evidence."""
    out = []
    for rec, opened in zip(layer.record.groups, layer.groups):
        if opened.placed:
            kind, data = slot_ordered(opened)
            rec = ColumnGroup(
                rec.genome_ids,
                kind,
                save_array(root, f"{prefix}.g{generation:07d}-{rec.genome_ids[0]}.{kind}.npy", data),
            )
        out.append(rec)
    return tuple(out)


class Layer:
    """An opened, memory-mapped layer.

    Parameters
    ----------
    root : str
        Database directory.
    record : LayerRecord
        Its catalog record.
    column_of : dict of int to int
        Genome id -> column index in the database's genome order.
    """

    def __init__(self, root: str, record: LayerRecord, column_of: Mapping[int, int]) -> None:
        self.record = record
        self.n = record.n_kmers
        files = record.files
        roles = ("unitigs", "dictionary") if "dictionary" in files else ("unitigs", "mphf", "evidence")
        for role in roles:
            if role not in files:
                raise CorruptDatabaseError(f"layer {record.id}", f"the catalog names no {role} file")
        self.unitigs = UnitigSet(load_array(root, files["unitigs"]), source=files["unitigs"].path)
        #: The minimizer dictionary of an exact layer of format 4, None otherwise.
        self.dictionary: MinimizerDictionary | None = None
        #: The MPHF and per-slot evidence of the other layers, None with a dictionary.
        self.mphf: MPHF | None = None
        self.evidence: Evidence | None = None
        if "dictionary" in files:
            ref = files["dictionary"]
            self.dictionary = MinimizerDictionary(load_array(root, ref), self.unitigs, source=ref.path)
            counts = [("unitigs", self.unitigs.n), ("dictionary", self.dictionary.n)]
        else:
            self.mphf = MPHF.from_array(load_array(root, files["mphf"]), source=files["mphf"].path)
            self.evidence = Evidence(load_array(root, files["evidence"]), source=files["evidence"].path)
            counts = [("mphf", self.mphf.n), ("unitigs", self.unitigs.n), ("evidence", self.evidence.n)]
        for name, count in counts:
            if count != self.n:
                raise CorruptDatabaseError(files[name].path, f"holds {count} k-mers, the layer has {self.n}")
        #: The column groups, opened through their encodings.
        self.groups: list[ColumnEncoding] = []
        ordinals = SlotOrdinals(self._ordinals, self.n) if self.exact else None
        for group in record.groups:
            opened = open_group(group, load_array(root, group.file), column_of, ordinals)
            if opened.n != self.n:
                raise CorruptDatabaseError(group.file.path, "column group rows differ from the layer's k-mers")
            self.groups.append(opened)

    @property
    def lookup_file(self) -> str:
        """Path of the file that maps keys to slots (dictionary or MPHF), for messages."""
        files = self.record.files
        return (files["dictionary"] if "dictionary" in files else files["mphf"]).path

    @property
    def unitig_slots(self) -> bool:
        """Whether the slots are the unitig orders of the k-mers (a layer with a dictionary)."""
        return self.dictionary is not None

    @property
    def evidence_kind(self) -> str:
        """``"exact"`` or ``"approx"``."""
        return "exact" if self.evidence is None else self.evidence.kind

    @property
    def fp_bits(self) -> int:
        """Fingerprint bits of approximate evidence, 0 for exact."""
        return 0 if self.evidence is None else self.evidence.fp_bits

    def _ordinals(self, slots: np.ndarray) -> np.ndarray:
        """Unitig order of the k-mer of each slot (exact evidence)."""
        if self.evidence is None:
            return np.asarray(slots, dtype=np.int64)
        return self.evidence.ordinals(slots, self.unitigs)

    def slots_of_unitig_kmers(self) -> np.ndarray:
        """The slot of each k-mer of :meth:`unitig_kmers`, in that order."""
        if self.mphf is None:
            return np.arange(self.n, dtype=np.int64)
        return self.mphf.lookup(self.unitig_kmers())

    def check_config(self, config: Config) -> None:
        """Refuse a layer whose headers disagree with the index configuration.

        Cheap (header fields only): a layer of another k than the config's would be looked up
        with k-mers of the wrong length, a dictionary of another m with the wrong minimizers,
        and evidence of another kind or width than the config's would be read with the wrong
        rule; all answer wrong instead of failing.

        Raises
        ------
        CorruptDatabaseError
            Naming the file whose header disagrees.
        """
        files = self.record.files
        if self.unitigs.k != config.k:
            raise CorruptDatabaseError(
                files["unitigs"].path, f"holds k-mers of k={self.unitigs.k}, the configuration says k={config.k}"
            )
        if self.dictionary is not None and self.dictionary.m != config.m:
            raise CorruptDatabaseError(
                files["dictionary"].path, f"finds minimizers of m={self.dictionary.m}, the configuration says m={config.m}"
            )
        if self.evidence_kind != config.evidence or (config.evidence == "approx" and self.fp_bits != config.fp_bits):
            raise CorruptDatabaseError(
                files["dictionary" if self.dictionary is not None else "evidence"].path,
                f"holds {self.evidence_kind} evidence of {self.fp_bits} bits, the configuration says "
                f"{config.evidence} of {config.fp_bits}",
            )

    def find(
        self,
        keys: np.ndarray,
        hashes: np.ndarray | None = None,
        anchors: np.ndarray | None = None,
        others: np.ndarray | None = None,
        scratch: Scratch | None = None,
        out: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Membership of ``keys`` (uint64 canonical k-mers).

        Parameters
        ----------
        keys : ndarray of uint64
            Canonical k-mers.
        hashes, anchors, others : ndarray, optional
            Their minimizer hashes, anchors and reverse complements, when the caller has
            them from a sequence (:func:`~kmerdb.core.kmers.sequence_anchors`); a dictionary
            computes what is not given, the other layers do not need them.
        scratch, out : optional
            A dictionary's work arrays and the arrays that receive ``found`` and ``slots``
            (see :meth:`~kmerdb.core.dictionary.MinimizerDictionary.find`); the other layers
            do without.

        Returns
        -------
        found : ndarray of bool
        slots : ndarray of int64
            Slot of each found key (meaningless where not found).
        """
        keys = np.asarray(keys, dtype=np.uint64)
        if self.dictionary is not None:
            return self.dictionary.find(keys, hashes, anchors, others, scratch, out)
        assert self.mphf is not None and self.evidence is not None
        slots = self.mphf.lookup(keys)
        inside = slots >= 0  # -1: a stranger that fell through every level
        safe = np.maximum(slots, 0, out=slots)
        if not self.n:
            return np.zeros(keys.size, dtype=bool), safe
        found = inside & self.evidence.check(keys, safe, self.unitigs)
        return found, safe

    @property
    def exact(self) -> bool:
        """Whether :meth:`find` is exact (exact evidence) or may accept strangers (approx)."""
        return self.evidence is None or self.evidence.exact

    def find_exact(self, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Like :meth:`find`, but exact whatever the evidence kind.

        With approximate evidence the keys are checked against the layer's k-mers decoded
        from its unitigs (sorted once per call), which costs O(n log n): meant for merges,
        verification and exports, not for queries.
        """
        if self.exact:
            return self.find(keys)
        assert self.mphf is not None
        keys = np.asarray(keys, dtype=np.uint64)
        found = np.zeros(keys.size, dtype=bool)
        slots = np.zeros(keys.size, dtype=np.int64)
        if self.n and keys.size:
            members = np.sort(self.unitigs.kmers())
            at = np.minimum(np.searchsorted(members, keys), self.n - 1)
            found = members[at] == keys
            slots[found] = self.mphf.lookup(keys[found])
        return found, slots

    def fill_rows(self, slots: np.ndarray, out: np.ndarray, counts: bool) -> None:
        """Write the rows of ``slots`` into ``out`` (len(slots) x genomes of the database).

        ``out`` is boolean presence, or integer counts when ``counts`` (count groups only).
        """
        for group in self.groups:
            group.fill(slots, out, counts)

    def presence_bytes(self, slots: np.ndarray) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Presence of the rows of ``slots``, eight genomes to a byte.

        Yields
        ------
        columns : ndarray of intp
            The database columns of the byte's genomes (up to 8; -1 for a genome no
            longer in the database).
        values : ndarray of uint8
            One byte per slot, the first genome in the most significant bit (as
            ``np.packbits``).
        """
        for group in self.groups:
            yield from group.presence_bytes(slots)

    def kmers(self) -> np.ndarray:
        """All k-mers of the layer (canonical uint64), in slot order, decoded from the unitigs."""
        if not self.n:
            return np.zeros(0, dtype=np.uint64)
        if self.evidence is None:
            return self.unitigs.kmers()
        assert self.mphf is not None
        return self.evidence.kmers(self.unitigs, self.mphf)

    def unitig_kmers(self) -> np.ndarray:
        """All k-mers of the layer (canonical uint64), in unitig order: the cheapest way to read them."""
        return self.unitigs.kmers()

    def stats(self) -> dict:
        """Sizes of the layer's structures: k-mers, unitigs, bases, bytes per role."""
        return {
            "n_kmers": self.n,
            "n_unitigs": self.unitigs.n_unitigs,
            "n_bases": self.unitigs.n_bases,
            "evidence": self.evidence_kind,
            "fp_bits": self.fp_bits,
            "bytes": {role: ref.nbytes for role, ref in self.record.files.items()}
            | {"columns": sum(g.file.nbytes for g in self.record.groups)},
        }
