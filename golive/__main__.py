import sys

from golive.cli import main

sys.exit(main())
