import sys

from nasfpn.cli import main

sys.exit(main())
