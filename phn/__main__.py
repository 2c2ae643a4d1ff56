"""``python -m phn``: see :mod:`phn.cli`."""

from phn.cli import main

raise SystemExit(main())
