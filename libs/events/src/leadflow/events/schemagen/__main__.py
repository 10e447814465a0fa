"""``python -m leadflow.events.schemagen``."""

from leadflow.events.schemagen import main

raise SystemExit(main())
