"""``python -m scalezero_agents.cli``: the ``scalezero`` command line."""

import sys

from scalezero_agents.cli import main

if __name__ == "__main__":
    sys.exit(main())
