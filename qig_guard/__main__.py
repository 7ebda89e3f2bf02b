"""``python -m qig_guard``."""

import sys

from qig_guard.cli import main

sys.exit(main())
