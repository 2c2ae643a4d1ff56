"""``python -m phn``: see :mod:`phn.cli`. Ctrl-C at any moment, imports included, exits with one line."""

import sys

try:
    from phn.cli import main
except KeyboardInterrupt:
    print("phn: interrupted", file=sys.stderr)
    raise SystemExit(130) from None

raise SystemExit(main())
