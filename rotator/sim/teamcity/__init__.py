"""A TeamCity REST server simulator, faithful to ``teamcity-contract.md``.

TeamCity cannot be installed on our machines; this stands in for it in tests and in
``rotator demo``, and lets users rehearse a rotation. In-process::

    from rotator.sim.teamcity import TeamCitySimulator

    with TeamCitySimulator(admin_token=token, seed=DEMO_SEED) as sim:
        sim.url                    # http://127.0.0.1:<port>
        sim.faults.latency(0.5); sim.faults.fail_next(3, status=503); sim.faults.drop_next(1)
        sim.faults.read_only_project("DataPipelines", True); sim.faults.clear()
        sim.requests               # [RequestRecord(method, path, status, auth)], auth names the
                                   # token ("bearer:<user>/<token name>") or user, never a value
        sim.state                  # the Model: users, projects, build types, builds, tokens
        sim.advance_clock(3600)    # tokens expire and builds move on the simulator's clock
        sim.builds                 # the build lifecycle: plan(), hold(), queue(), start(),
                                   # finish(), cancel(), get() (build_control.py)

As a process: ``rotator sim teamcity [--host H] [--port P] [--admin-token-env VAR] [--seed FILE]``
or ``python -m rotator.sim.teamcity``; the same controls are then under ``/__sim/`` for
administrators (``POST /__sim/faults``, ``GET /__sim/requests``, ``POST /__sim/clock``,
``GET /__sim/tokens/<user>``, ``POST /__sim/builds/<id>/start|finish|cancel``,
``POST /__sim/buildTypes/<id>/plan``,
``GET /__sim/agent-parameter/<buildType>/<name>``). The seed format is in ``seed.py``.
"""

from rotator.sim.teamcity.seed import DEMO_SEED
from rotator.sim.teamcity.simulator import TeamCitySimulator

__all__ = ["DEMO_SEED", "TeamCitySimulator"]
