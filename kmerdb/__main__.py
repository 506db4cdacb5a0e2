"""``python -m kmerdb``."""

import sys

from .console import main

sys.exit(main())
