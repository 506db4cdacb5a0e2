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

from .build import BuildReport, build
from .catalog import GenomeRecord, HistoryRecord
from .config import FORMAT_VERSION, Config
from .database import Database, QueryResult
from .database import open_database as open
from .analytics import ColWeights, DistanceMatrix
from .setops import SetOpReport, setop
from .merge import MergeReport, merge
from .maintenance import VacuumReport, VerifyReport, vacuum, verify
from .transaction import Transaction
from .reindex import ReindexReport, reindex
from . import errors as _errors
from .errors import *  # noqa: F403  the whole hierarchy, as errors.__all__ lists it
from .inputs import GenomeInput, parse_input_args

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
