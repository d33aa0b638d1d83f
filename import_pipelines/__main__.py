"""``python -m import_pipelines``: the project's command line."""

from import_pipelines.cli import main

raise SystemExit(main())
