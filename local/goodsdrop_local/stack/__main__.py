"""`python -m goodsdrop_local.stack up|down|reset|status`: see goodsdrop_local.stack.cli."""

import sys

from goodsdrop_local.stack.cli import main

sys.exit(main())
