from chainfolio.cli import main

raise SystemExit(main())
