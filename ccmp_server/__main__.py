"""`python -m ccmp_server` is the command-line client (see ccmp_server.client)."""

from ccmp_server.client import main

raise SystemExit(main())
