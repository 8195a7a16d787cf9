import sys

from rotator.sim.teamcity.cli import main

sys.exit(main())
