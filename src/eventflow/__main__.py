"""``python -m eventflow``: the same as the ``eventflow`` command."""

from __future__ import annotations

from ._cli import main

raise SystemExit(main())
