"""kmerdb: an embedded, memory-mapped, on-disk k-mer index database for genome collections.

Each genome is a column, each distinct canonical k-mer a row::

    import kmerdb
    kmerdb.build("genomes.kmerdb", {"ecoli": "ecoli.fna.gz", "salmonella": "lt2.fna.gz"}, counts=True)
    with kmerdb.open("genomes.kmerdb") as db:
        result = db.query(["ACGT..."])
        result.hits, result.n_kmers, result.ratio
"""

from __future__ import annotations

import logging as _logging

__version__ = "0.1.0"

# The library speaks only through this logger (and optional progress callbacks); a program
# that embeds kmerdb decides where, if anywhere, the records go.
_logging.getLogger(__name__).addHandler(_logging.NullHandler())

from kmerdb import errors as _errors
from kmerdb.analysis.analytics import ColWeights, DistanceMatrix
from kmerdb.config import FORMAT_VERSION, Config
from kmerdb.database import Database, reindex
from kmerdb.database import open_database as open
from kmerdb.errors import *  # noqa: F403  the whole hierarchy, as errors.__all__ lists it
from kmerdb.ops.build import BuildReport, build
from kmerdb.ops.inputs import GenomeInput, parse_input_args
from kmerdb.ops.maintenance import VacuumReport, VerifyReport, vacuum, verify
from kmerdb.ops.merge import MergeReport, merge
from kmerdb.ops.reindex import ReindexReport
from kmerdb.ops.setops import SetOpReport, setop
from kmerdb.ops.transaction import Transaction
from kmerdb.query.engine import QueryResult, query_batches
from kmerdb.store.catalog import GenomeRecord, HistoryRecord

__all__ = [
    "__version__",
    "FORMAT_VERSION",
    "open",
    "build",
    "parse_input_args",
    "BuildReport",
    "Config",
    "Database",
    "QueryResult",
    "query_batches",
    "ColWeights",
    "DistanceMatrix",
    "SetOpReport",
    "setop",
    "merge",
    "MergeReport",
    "verify",
    "VerifyReport",
    "vacuum",
    "VacuumReport",
    "Transaction",
    "reindex",
    "ReindexReport",
    "GenomeInput",
    "GenomeRecord",
    "HistoryRecord",
] + list(_errors.__all__)
