from iaas_metadata.app import main

raise SystemExit(main())
