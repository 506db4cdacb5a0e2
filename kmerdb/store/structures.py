"""Sizes of an index's structures: bits per k-mer of the dictionary (or MPHF and evidence),
unitigs and columns.

Bytes are those of the data files the catalog names (``.npy`` headers included); bits per
k-mer divide by the number of distinct k-mers of the index.  The figure that compares
indexes is ``index``: dictionary + MPHF + evidence + unitigs, everything needed to answer
"is this k-mer here, and in which slot", without the genome columns.
"""

from __future__ import annotations

from typing import Any, cast

import numpy as np

from kmerdb.core import bits
from kmerdb.core.evidence import Evidence, evidence_for
from kmerdb.core.unitigs import UnitigSet
from kmerdb.errors import CorruptDatabaseError
from kmerdb.store.classes import DIFFERENCE
from kmerdb.store.encodings import encoding_for
from kmerdb.store.storage import load_array

__all__ = ["unitig_summary", "structure_stats", "class_summary", "ROLES"]

#: Structures of a layer, in the order they are reported.
ROLES = ("dictionary", "mphf", "evidence", "unitigs", "columns")


def unitig_summary(layers) -> dict:
    """Number and mean length of the unitigs of opened layers (read from their headers)."""
    count = kmers = bases = 0
    for layer in layers:
        count += layer.unitigs.n_unitigs
        kmers += layer.unitigs.n
        bases += layer.unitigs.n_bases
    return {
        "count": count,
        "bases": bases,
        "mean_kmers": kmers / count if count else 0.0,
        "mean_bases": bases / count if count else 0.0,
    }


def structure_stats(db, lengths: bool = True) -> dict:
    """Sizes and unitig figures of an opened database.

    Parameters
    ----------
    db : Database
        An opened handle.
    lengths : bool
        Also read every layer's unitig offsets for the longest unitig and the N50 (a pass
        over U offsets per layer; the rest comes from headers and the catalog).

    Returns
    -------
    dict
        ``n_kmers``, ``n_layers``, ``evidence`` (kind, fp_bits, z, expected false positive
        rate of one lookup), ``structures`` (role -> bytes, bits_per_kmer), ``index``
        (MPHF + evidence + unitigs: bytes, bits_per_kmer) and ``unitigs`` (count, mean length
        in k-mers and bases, and with ``lengths`` the longest and the N50 in bases),
        ``column_kinds`` (kind of column group -> groups, bytes, bits_per_kmer) and
        ``classes`` (see :func:`class_summary`).
    """
    records = [rec for part in db.snapshot.partitions for rec in part]
    # only the headers of the unitigs and evidence are read (memory-mapped), not whole layers
    layers = [_Structures(db.path, rec) for rec in records]
    n = sum(rec.n_kmers for rec in records)
    sizes = dict.fromkeys(ROLES, 0)
    for rec in records:
        for role, ref in rec.files.items():
            sizes[role] = sizes.get(role, 0) + ref.nbytes
        sizes["columns"] += sum(g.file.nbytes for g in rec.groups)

    def per_kmer(nbytes: int) -> dict:
        return {"bytes": int(nbytes), "bits_per_kmer": 8 * nbytes / n if n else 0.0}

    cfg = db.config
    unitigs = unitig_summary(layers)
    if lengths:
        k = cfg.k
        all_lengths = [layer.unitigs.lengths() + (k - 1) for layer in layers if layer.unitigs.n]
        bases = np.sort(np.concatenate(all_lengths))[::-1] if all_lengths else np.zeros(0, np.int64)
        unitigs["longest_bases"] = int(bases[0]) if bases.size else 0
        if bases.size:
            half = np.searchsorted(np.cumsum(bases), bases.sum() / 2)
            unitigs["n50_bases"] = int(bases[min(half, bases.size - 1)])
        else:
            unitigs["n50_bases"] = 0
    kinds = sorted({layer.kind for layer in layers})
    column_kinds: dict[str, dict] = {}
    for rec in records:
        for g in rec.groups:
            entry = column_kinds.setdefault(g.kind, {"groups": 0, "bytes": 0})
            entry["groups"] += 1
            entry["bytes"] += g.file.nbytes
    for entry in column_kinds.values():
        entry["bits_per_kmer"] = 8 * entry["bytes"] / n if n else 0.0
    return {
        "n_kmers": n,
        "n_layers": len(layers),
        "evidence": {
            "kind": cfg.evidence,
            "fp_bits": cfg.fp_bits,
            "z": cfg.z,
            "layer_kinds": kinds,
            "false_positive_rate": evidence_for(cfg).false_positive_rate,
        },
        "structures": {role: per_kmer(b) for role, b in sizes.items()},
        "index": per_kmer(sizes["dictionary"] + sizes["mphf"] + sizes["evidence"] + sizes["unitigs"]),
        "unitigs": unitigs,
        "column_kinds": column_kinds,
        "classes": class_summary(db.path, records, n),
    }


def class_summary(root: str, records, n_kmers: int) -> dict:
    """Colour classes of the colour-class groups, from their headers (memory-mapped).

    Returns
    -------
    dict
        ``groups`` (colour-class groups), ``count`` (their classes, summed: a colour used by
        several layers counts in each), ``differences`` (those written as a difference from
        another class), ``id_bytes`` (the class id of every slot, or the
        runs of classes along the unitigs),
        ``table_bytes`` (forms, offsets and members of the classes), ``count_bytes`` (slot
        count ranges and values, class-counts only) and bits per k-mer of each part.
    """
    out: dict[str, float] = {"groups": 0, "count": 0, "differences": 0, "id_bytes": 0, "table_bytes": 0, "count_bytes": 0}
    for rec in records:
        for g in rec.groups:
            encoding = encoding_for(g.kind)
            if encoding.family != "classes":
                continue
            data = load_array(root, g.file)
            lay = cast(Any, encoding)._layout(data, None, g.file.path)
            words = {name: hi - lo for name, (lo, hi) in lay["sections"].items()}
            out["groups"] += 1
            out["count"] += int(lay["c"])
            forms = bits.unpack(data[slice(*lay["sections"]["forms"])], int(lay["c"]), 2)
            out["differences"] += int(np.count_nonzero(forms == DIFFERENCE))
            # a class id per slot, or runs of classes along the unitigs
            out["id_bytes"] += 8 * (words.get("ids", 0) + words.get("bounds", 0) + words.get("runs", 0))
            out["table_bytes"] += 8 * (words["forms"] + words["offsets"] + words["payload"])
            out["count_bytes"] += 8 * (words.get("starts", 0) + words.get("values", 0))
    for part in ("id", "table", "count"):
        out[f"{part}_bits_per_kmer"] = 8 * out[f"{part}_bytes"] / n_kmers if n_kmers else 0.0
    return out


class _Structures:
    """The unitigs and evidence kind of one layer record, opened without the rest of the layer."""

    def __init__(self, root: str, rec) -> None:
        files = rec.files
        roles = ("unitigs",) if "dictionary" in files else ("unitigs", "evidence")
        for role in roles:
            if role not in files:
                raise CorruptDatabaseError(f"layer {rec.id}", f"the catalog names no {role} file")
        self.unitigs = UnitigSet(load_array(root, files["unitigs"]), source=files["unitigs"].path)
        if "dictionary" in files:
            self.kind = "exact"
        else:
            self.kind = Evidence(load_array(root, files["evidence"]), source=files["evidence"].path).kind
