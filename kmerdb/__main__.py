"""``python -m kmerdb``."""

import sys

from kmerdb.console import main

sys.exit(main())
