from photomapd.cli import main

raise SystemExit(main())
