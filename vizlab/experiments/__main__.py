"""``python -m vizlab.experiments run ...``: see :mod:`vizlab.experiments.cli`."""

from vizlab.experiments.cli import main

raise SystemExit(main())
