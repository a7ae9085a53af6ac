import sys

from lesionflow_cli.main import main

sys.exit(main())
