"""Layers: immutable k-mer sets inside a partition, memory-mapped.

A layer of n k-mers is an MPHF mapping each of them to a slot in [0, n), evidence per
slot that rejects k-mers that are not members (the MPHF maps any key somewhere), and
column groups whose rows are the slots.  Files of a layer are written once by
:func:`write_layer` and only read afterwards.
"""

from __future__ import annotations

import numpy as np

from .catalog import ColumnGroup, LayerRecord
from .columns import COUNTS, PRESENCE, pack_presence, to_counts, unpack_presence
from .config import Config
from .errors import CorruptDatabaseError
from .mphf import MPHF
from .storage import load_array, save_array

__all__ = ["Layer", "write_layer", "layer_prefix"]


def layer_prefix(partition: int, layer_id: int) -> str:
    """Relative path prefix of a layer's files."""
    return f"data/p{partition:05d}/L{layer_id:07d}"


def write_layer(
    root: str,
    partition: int,
    layer_id: int,
    generation: int,
    keys: np.ndarray,
    groups: list[tuple[tuple[int, ...], np.ndarray]],
    config: Config,
) -> LayerRecord:
    """Build and write a layer.

    Parameters
    ----------
    root : str
        Database directory.
    partition, layer_id, generation : int
        Where it goes and who made it.
    keys : ndarray of uint64
        The layer's distinct canonical k-mers.
    groups : list of (genome ids, matrix)
        Column groups to write; each matrix has one row per key (in ``keys`` order) and
        one column per genome id: booleans, or integer counts when ``config.counts``.
    config : Config
        The index configuration.

    Returns
    -------
    LayerRecord
        Ready to be committed to the catalog.
    """
    keys = np.ascontiguousarray(keys, dtype=np.uint64)
    prefix = layer_prefix(partition, layer_id)
    mphf = MPHF.build(keys)
    slots = mphf.lookup(keys)
    files = {"mphf": save_array(root, f"{prefix}.mphf.npy", mphf.to_array())}
    by_slot = np.empty_like(keys)
    by_slot[slots] = keys
    files["evidence"] = save_array(root, f"{prefix}.evidence.npy", by_slot)
    return LayerRecord(
        layer_id,
        int(keys.size),
        files,
        tuple(write_group(root, prefix, generation, ids, matrix, slots, config) for ids, matrix in groups),
        generation,
    )


def write_group(
    root: str,
    prefix: str,
    generation: int,
    genome_ids: tuple[int, ...],
    matrix: np.ndarray,
    slots: np.ndarray,
    config: Config,
) -> ColumnGroup:
    """Write one column group; ``matrix`` rows are in key order and ``slots`` maps them to slots."""
    by_slot = np.empty_like(matrix)
    by_slot[slots] = matrix
    kind = COUNTS if config.counts else PRESENCE
    data = to_counts(by_slot) if config.counts else pack_presence(by_slot)
    ref = save_array(root, f"{prefix}.g{generation:07d}-{genome_ids[0]}.{kind}.npy", data)
    return ColumnGroup(tuple(int(g) for g in genome_ids), kind, ref)


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

    def __init__(self, root: str, record: LayerRecord, column_of: dict[int, int]) -> None:
        self.record = record
        self.n = record.n_kmers
        self.mphf = MPHF.from_array(load_array(root, record.files["mphf"]), source=record.files["mphf"].path)
        self.evidence = load_array(root, record.files["evidence"])
        if self.evidence.shape != (self.n,):
            raise CorruptDatabaseError(record.files["evidence"].path, "evidence length differs from the layer's k-mers")
        self.groups = []
        self._slices = []
        for group in record.groups:
            data = load_array(root, group.file)
            if data.shape[0] != self.n:
                raise CorruptDatabaseError(group.file.path, "column group rows differ from the layer's k-mers")
            cols = np.array([column_of[g] for g in group.genome_ids if g in column_of], dtype=np.intp)
            keep = np.array([i for i, g in enumerate(group.genome_ids) if g in column_of], dtype=np.intp)
            self.groups.append((group, data, cols, keep))
            # every column kept, in database order: plain slices instead of fancy indexing
            whole = keep.size == len(group.genome_ids) and cols.size and (np.diff(cols) == 1).all()
            self._slices.append((slice(int(cols[0]), int(cols[-1]) + 1), slice(None)) if whole else (cols, keep))

    def find(self, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Membership of ``keys`` (uint64 canonical k-mers).

        Returns
        -------
        found : ndarray of bool
        slots : ndarray of int64
            Slot of each found key (meaningless where not found).
        """
        slots = self.mphf.lookup(keys)
        inside = slots >= 0
        safe = np.where(inside, slots, 0)
        found = inside & (self.evidence[safe] == keys) if self.n else np.zeros(keys.size, dtype=bool)
        return found, safe

    def fill_rows(self, slots: np.ndarray, out: np.ndarray, counts: bool) -> None:
        """Write the rows of ``slots`` into ``out`` (len(slots) x genomes of the database).

        ``out`` is boolean presence, or integer counts when ``counts`` (count groups only).
        """
        for (group, data, all_cols, _), (cols, keep) in zip(self.groups, self._slices):
            if all_cols.size == 0:
                continue
            rows = data[slots]
            if group.kind == PRESENCE:
                values = unpack_presence(rows, len(group.genome_ids))[:, keep]
            else:
                values = rows[:, keep]
                if not counts:
                    values = values > 0
            out[:, cols] = values

    def kmers(self) -> np.ndarray:
        """All k-mers of the layer, in slot order."""
        return np.asarray(self.evidence)
