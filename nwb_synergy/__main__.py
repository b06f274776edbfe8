"""``python -m nwb_synergy`` runs the ``nwb-synergy`` command."""

import sys

from .cli import main

sys.exit(main())
