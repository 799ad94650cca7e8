"""`python -m app.cli`: the same as the `moa-gateway` console script."""

from __future__ import annotations

import sys

from app.cli import main

sys.exit(main())
