"""The simulated TeamCity server's state: users, projects, build configurations, builds,
access tokens and parameters, with TeamCity's permission rules.

All access goes through ``Model`` under one lock; the HTTP layer never touches the dicts
directly. Time comes from an injectable clock so tests can make tokens expire without waiting.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from rotator.sim.teamcity import builds as lifecycle
from rotator.sim.teamcity.builds import HELD, Build, BuildPlan
from rotator.sim.teamcity.errors import BadRequest, Forbidden, NotFoundError

ROOT_PROJECT = "_Root"
ADMIN_ROLE = "SYSTEM_ADMIN"
PERMISSION_NAMES = {
    "view_project": "View project",
    "edit_project": "Edit project",
    "run_build": "Run build",
    "view_build_runtime_data": "View build runtime parameters and data",
}
"""The permissions the simulator knows, with the names TeamCity's 403 texts give them."""
PERMISSIONS = tuple(PERMISSION_NAMES)


@dataclass
class Token:
    name: str
    value: str = field(repr=False)
    created: datetime
    expires: datetime | None
    restrictions: list[tuple[str, str]]  # (project id, permission)


@dataclass
class User:
    id: int
    username: str
    name: str
    password: str | None = field(default=None, repr=False)
    admin: bool = False
    permissions: dict[str, set[str]] = field(default_factory=dict)  # project id -> permissions
    tokens: dict[str, Token] = field(default_factory=dict)


@dataclass
class Parameter:
    name: str
    value: str = field(repr=False)
    type: str | None = None  # raw type spec, e.g. "password" or "password display='hidden'"

    @property
    def secure(self) -> bool:
        return bool(self.type) and self.type.split()[0] == "password"


@dataclass
class Project:
    id: str
    name: str
    parent: str | None
    parameters: dict[str, Parameter] = field(default_factory=dict)
    read_only_ui: bool = False
    settings_tokens: dict[str, tuple[str, str]] = field(
        default_factory=dict
    )  # name -> (value, desc)


@dataclass
class BuildType:
    id: str
    name: str
    project: str
    parameters: dict[str, Parameter] = field(default_factory=dict)
    default_branch: str | None = None  # None: no VCS branches, builds have no branchName


@dataclass
class Principal:
    """Who a request acts as: the user, and the token's restrictions if a token was used."""

    user: User
    token: Token | None = None

    def can(self, model: Model, project: str, permission: str) -> bool:
        if not model.user_can(self.user, project, permission):
            return False
        if self.token is None or not self.token.restrictions:
            return True
        chain = set(model.ancestors(project))
        return any(p in chain and perm == permission for p, perm in self.token.restrictions)

    def require(self, model: Model, project: str, permission: str, shown: str = "") -> None:
        """403 in the server's words unless the caller may; ``shown`` names the server's
        permission when the simulator grants it through a broader one ("Tag build" is
        checked as "Run build")."""
        if not self.can(model, project, permission):
            label = shown or PERMISSION_NAMES[permission]
            raise Forbidden(f"You do not have \"{label}\" permission in project '{project}'")


class Model:
    """TeamCity's objects and rules, behind one lock."""

    def __init__(self, clock: Callable[[], datetime] | None = None) -> None:
        self.lock = threading.RLock()
        self._clock = clock or (lambda: datetime.now(UTC))
        self.clock_offset = timedelta()
        self.users: dict[int, User] = {}
        self.projects: dict[str, Project] = {
            ROOT_PROJECT: Project(ROOT_PROJECT, "<Root project>", None)
        }
        self.build_types: dict[str, BuildType] = {}
        self.builds: dict[int, Build] = {}
        self.build_plans: dict[str, BuildPlan] = {}  # per build type; else default_plan
        self.default_plan = BuildPlan()
        self.build_counters: dict[str, int] = {}  # build numbers per build type
        self.queue_counter = 0
        self.canceled_status_text = "Canceled"  # exact text unverified (contract)
        self.guest: User | None = None  # /guestAuth/ acts as this user; None: guest access off
        self.refuse_edits_when_read_only = True
        self.on_expiry_401 = "invalid"
        self.oidc: Any = None  # the OIDC plugin's keys and build features (oidc.py), lazily

    def now(self) -> datetime:
        return self.precise_now().replace(microsecond=0)

    def precise_now(self) -> datetime:
        """The simulator's clock (builds are scheduled on it to the microsecond)."""
        return self._clock() + self.clock_offset

    @property
    def auto_finish_builds(self) -> bool:
        """False holds new builds of types without their own plan until a test finishes them
        (the first version's switch; ``default_plan`` is the full control)."""
        return self.default_plan != HELD

    @auto_finish_builds.setter
    def auto_finish_builds(self, value: bool) -> None:
        self.default_plan = BuildPlan() if value else HELD

    # -- users ---------------------------------------------------------------------------
    def add_user(
        self,
        username: str,
        *,
        name: str | None = None,
        password: str | None = None,
        admin: bool = False,
        permissions: dict[str, Iterable[str]] | None = None,
    ) -> User:
        with self.lock:
            if self.find_user(username) is not None:
                raise BadRequest(f"Duplicate user: {username}")
            user = User(
                id=len(self.users) + 1,
                username=username,
                name=name or username,
                password=password,
                admin=admin,
                permissions={p: set(perms) for p, perms in (permissions or {}).items()},
            )
            self.users[user.id] = user
            return user

    def enable_guest(self, permissions: dict[str, Iterable[str]] | None = None) -> User:
        """Turn guest access on (``/guestAuth/``), with per-project permissions."""
        self.guest = User(0, "guest", "Guest user")
        self.guest.permissions = {p: set(perms) for p, perms in (permissions or {}).items()}
        return self.guest

    def find_user(self, username: str) -> User | None:
        wanted = username.lower()
        return next((u for u in self.users.values() if u.username.lower() == wanted), None)

    def locate_user(self, locator: str, caller: Principal) -> User:
        """``current``, ``id:<n>``, ``username:<name>`` or a bare username (case-insensitive)."""
        user: User | None
        if locator == "current":
            user = caller.user
        elif locator.startswith("id:"):
            raw = locator[3:]
            user = self.users.get(int(raw)) if (raw.isascii() and raw.isdigit()) else None
        elif locator.startswith("username:"):
            user = self.find_user(locator[9:])
        elif ":" in locator or "," in locator:
            raise BadRequest(f"Invalid user locator '{locator}'")
        else:
            user = self.find_user(locator)
        if user is None or (user.id != caller.user.id and not caller.user.admin):
            raise NotFoundError("User not found")
        return user

    def user_can(self, user: User, project: str, permission: str) -> bool:
        if user.admin:
            return True
        return any(permission in user.permissions.get(p, ()) for p in self.ancestors(project))

    def authenticate_token(self, value: str) -> tuple[User, Token] | str | None:
        """The token's owner, ``None`` if unknown, ``"expired"`` if it lapsed."""
        now = self.now()
        for user in self.users.values():
            for token in user.tokens.values():
                if secrets.compare_digest(token.value, value):
                    if token.expires is not None and token.expires <= now:
                        return "expired"
                    return user, token
        return None

    def create_token(
        self,
        user: User,
        name: str,
        expires: datetime | None,
        restrictions: list[tuple[str, str]],
        caller: Principal,
    ) -> Token:
        with self.lock:
            if not name or not name.strip():
                raise BadRequest("name cannot be empty")
            if expires is not None and expires <= self.now():
                raise BadRequest("expirationDate should be after the current date")
            if name in user.tokens:
                raise BadRequest(
                    f"Token with name '{name}' already exists for user {user.username}"
                )
            for project, permission in restrictions:
                if project not in self.projects:
                    raise NotFoundError(f"Project not found for external id [{project}]")
                if permission not in PERMISSIONS:
                    raise BadRequest(f"Unknown permission '{permission}'")
                if not self.user_can(user, project, permission):
                    raise Forbidden(
                        f"User {user.username} does not have permission '{permission}' "
                        f"in project '{project}'"
                    )
            if caller.user.id != user.id and not caller.user.admin:
                raise Forbidden("You do not have permission to manage tokens of other users")
            token = Token(name, secrets.token_urlsafe(32), self.now(), expires, restrictions)
            user.tokens[name] = token
            return token

    def delete_token(self, user: User, name: str, caller: Principal) -> None:
        with self.lock:
            if caller.user.id != user.id and not caller.user.admin:
                raise Forbidden("You do not have permission to manage tokens of other users")
            if user.tokens.pop(name, None) is None:
                raise NotFoundError(f"Token with name '{name}' not found for user {user.username}")

    # -- projects ------------------------------------------------------------------------
    def ancestors(self, project: str) -> list[str]:
        chain = []
        current: str | None = project
        while current is not None and current in self.projects and current not in chain:
            chain.append(current)
            current = self.projects[current].parent
        return chain

    def add_project(
        self, project_id: str, name: str | None = None, parent: str | None = None
    ) -> Project:
        with self.lock:
            parent = parent or ROOT_PROJECT
            if parent not in self.projects:
                raise NotFoundError(f"Project not found for external id [{parent}]")
            project = Project(project_id, name or project_id, parent)
            self.projects[project_id] = project
            return project

    def locate_project(self, locator: str, caller: Principal) -> Project:
        project_id = locator[3:] if locator.startswith("id:") else locator
        project = self.projects.get(project_id)
        if project is None or not caller.can(self, project.id, "view_project"):
            raise NotFoundError(
                f"No project found by locator '{locator}'. "
                f"Project cannot be found by external id '{project_id}'."
            )
        return project

    def add_build_type(
        self, build_type_id: str, project: str, name: str | None = None
    ) -> BuildType:
        with self.lock:
            if project not in self.projects:
                raise NotFoundError(f"Project not found for external id [{project}]")
            bt = BuildType(build_type_id, name or build_type_id, project)
            self.build_types[build_type_id] = bt
            return bt

    def locate_build_type(self, locator: str, caller: Principal) -> BuildType:
        bt_id = locator[3:] if locator.startswith("id:") else locator
        bt = self.build_types.get(bt_id)
        if bt is None or not caller.can(self, bt.project, "view_project"):
            raise NotFoundError(f"No build type or template is found by id '{bt_id}'.")
        return bt

    # -- parameters ----------------------------------------------------------------------
    def effective_parameters(self, owner: Project | BuildType) -> list[tuple[Parameter, bool]]:
        """(parameter, inherited) pairs: own ones, then inherited from projects up the tree."""
        seen: dict[str, tuple[Parameter, bool]] = {}
        own = owner.parameters
        for p in own.values():
            seen[p.name] = (p, False)
        start = owner.project if isinstance(owner, BuildType) else owner.parent
        for project_id in self.ancestors(start) if start else []:
            for p in self.projects[project_id].parameters.values():
                seen.setdefault(p.name, (p, True))
        return sorted(seen.values(), key=lambda pair: pair[0].name)

    def effective_parameter(
        self, owner: Project | BuildType, name: str
    ) -> tuple[Parameter, bool] | None:
        """The (parameter, inherited) pair ``owner`` sees under ``name``, or None."""
        return next(
            (pair for pair in self.effective_parameters(owner) if pair[0].name == name), None
        )

    def project_of(self, owner: Project | BuildType) -> str:
        return owner.project if isinstance(owner, BuildType) else owner.id

    def check_edit(self, owner: Project | BuildType, caller: Principal) -> None:
        project = self.project_of(owner)
        caller.require(self, project, "edit_project")
        if self.refuse_edits_when_read_only and self.projects[project].read_only_ui:
            raise Forbidden(
                f"Project '{project}' settings are read-only (versioned settings); "
                "edit them in the VCS repository"
            )

    # -- builds (the lifecycle lives in builds.py) -----------------------------------------
    def queue_build(self, build_type: BuildType, caller: Principal) -> Build:
        with self.lock:
            caller.require(self, build_type.project, "run_build")
            return lifecycle.queue(self, build_type, caller)

    def finish_build(self, build: Build, status: str = "SUCCESS", text: str | None = None) -> None:
        with self.lock:
            lifecycle.advance(self)
            lifecycle.finish(self, build, status, text)
