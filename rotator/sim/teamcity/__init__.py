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

Where things are (what the simulator implements, endpoint by endpoint: ``README.md``):

| file | what it holds |
|---|---|
| `simulator.py` | `TeamCitySimulator`: the server thread, sessions, request log, `/__sim/` |
| `handler.py` | the request cycle (faults, body, reply), authentication, routing; `ROUTES` |
| `call.py` | `Call` (one request as endpoints see it), answers, route tables |
| `token_routes.py` | `/users/{user}/tokens`: list, create, delete access tokens |
| `parameter_routes.py` | `.../parameters` of projects and build types; versionedSettings/tokens |
| `discovery.py` | `/server`, `/users`, `/projects`, `/buildTypes` (reading) |
| `build_routes.py` | `/buildQueue` and `/builds`: queue, read, cancel, tags |
| `oidc_routes.py` | `/app/oidc-jwt/...` and `/__sim/oidc/...` (own authentication) |
| `render.py` | entity builders (user, project, build, property, token), JSON/XML, dates |
| `errors.py` | TeamCity's error answers (status, text body, headers) |
| `model.py` | `Model`: users, projects, build types, tokens, parameters, permissions |
| `builds.py` | build lifecycle on the model's clock, build permissions |
| `build_finder.py` | builds by locator, in the server's order |
| `build_control.py` | `sim.builds`: what agents and UI users would do to builds |
| `locator.py` | locator and `?fields=` parsing |
| `oidc.py` | the OIDC plugin: signing keys, JWTs, JWKS (`sim.oidc`) |
| `faults.py` | injected faults (`sim.faults`) |
| `seed.py` | seed files; `demo_seed.json` is the demo's |
| `cli.py` | `rotator sim teamcity` / `python -m rotator.sim.teamcity` |
"""

from rotator.sim.teamcity.seed import DEMO_SEED
from rotator.sim.teamcity.simulator import TeamCitySimulator

__all__ = ["DEMO_SEED", "TeamCitySimulator"]
