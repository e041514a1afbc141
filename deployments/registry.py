"""Deployments built from the org registry: one per organisation, plus housekeeping, sync-all and
the hourly Zoho notification channel renewal.

Everything is described once, as plain data (:class:`DeploymentSpec`), and turned into either

- runner deployments for ``serve()`` (:func:`serve_registry`, ``zxsync serve``: one process, no
  work pool), or
- ``prefect.yaml`` for ``prefect deploy --all`` on a process work pool with workers
  (:func:`render_prefect_yaml`, ``zxsync deployments render``),

so the two ways of running stay identical. Entrypoints are module paths (``flows.sync:...``) and
the YAML has ``pull: []``: a worker imports the installed package, whatever its working directory
(verified with Prefect 3.9.1: ``prefect deploy`` stores the module entrypoint and no pull step, and a
process worker started in another directory runs the flow).

Scheduled runs carry ``options.trigger = "schedule"`` through per-schedule parameters (the
server merges them over the deployment's ``{"org": slug}``), so the run list tells scheduled runs
(``demo · schedule · both · since-last``) from manual ones (``demo · manual · ...``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import yaml

if TYPE_CHECKING:
    from prefect.deployments.runner import RunnerDeployment

    from mappings.config import OrgConfig

#: Module-path entrypoints (the installed package; no working directory needed).
SYNC_ENTRYPOINT = "flows.sync:sync_organisation"
HOUSEKEEPING_ENTRYPOINT = "flows.housekeeping:housekeeping"
FLEET_ENTRYPOINT = "flows.fleet:sync_all"
CHANNELS_ENTRYPOINT = "flows.channels:zoho_channels"
#: Flow names (deployment names are ``<flow name>/<deployment name>``).
SYNC_FLOW = "sync-organisation"
HOUSEKEEPING_FLOW = "housekeeping"
FLEET_FLOW = "sync-all"
CHANNELS_FLOW = "zoho-channels"
#: The process work pool prefect.yaml targets (``prefect work-pool create zxsync --type process``).
WORK_POOL = "zxsync"
#: Housekeeping runs daily at a quiet hour (UTC: it serves every organisation).
HOUSEKEEPING_CRON = "30 3 * * *"
#: Zoho channels are checked hourly (UTC), well inside their life: asked for 6 days, renewed when
#: less than a day is left (``ZX_WEBHOOKS_CHANNEL_DAYS``, ``ZX_WEBHOOKS_RENEW_BEFORE_HOURS``).
CHANNELS_CRON = "17 * * * *"
SCHEDULED = {"options": {"trigger": "schedule"}}


@dataclass(frozen=True)
class ScheduleSpec:
    """One cron schedule in a timezone, with the parameters its runs get on top of the deployment's."""

    cron: str
    timezone: str
    parameters: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class DeploymentSpec:
    """A deployment as data: what both ``serve()`` and prefect.yaml are made from."""

    name: str
    flow_name: str
    entrypoint: str
    description: str
    parameters: dict[str, Any] = field(default_factory=dict)
    schedules: tuple[ScheduleSpec, ...] = ()
    tags: tuple[str, ...] = ()
    concurrency_limit: int | None = None

    @property
    def full_name(self) -> str:
        """``sync-organisation/demo``: what ``run_deployment`` and ``prefect deployment run`` take."""
        return f"{self.flow_name}/{self.name}"


def org_deployment_name(slug: str) -> str:
    """The full name of an org's sync deployment."""
    return f"{SYNC_FLOW}/{slug}"


def org_spec(org: OrgConfig) -> DeploymentSpec:
    """An org's sync deployment: its schedules in its timezone, one run at a time."""
    crons = org.cron_schedules()
    when = ", ".join(crons) if crons else "no schedule (manual runs only)"
    return DeploymentSpec(
        name=org.slug,
        flow_name=SYNC_FLOW,
        entrypoint=SYNC_ENTRYPOINT,
        description=(
            f"Sync {org.name} ({org.slug}) between Zoho CRM and Xero. Schedules: {when} "
            f"({org.timezone}). Use Run > Custom run to pick modules, direction, window or a dry run."
        ),
        parameters={"org": org.slug},
        schedules=tuple(ScheduleSpec(c, org.timezone, SCHEDULED) for c in crons),
        tags=("autosync", f"org:{org.slug}"),
        # Never two syncs of one org at once (the ledger's org lock is the second line).
        concurrency_limit=1,
    )


def housekeeping_spec() -> DeploymentSpec:
    """The daily ledger retention purge."""
    return DeploymentSpec(
        name="daily",
        flow_name=HOUSEKEEPING_FLOW,
        entrypoint=HOUSEKEEPING_ENTRYPOINT,
        description="Daily ledger retention: journal entries and settled intents past ZX_RETENTION_DAYS, "
        "staged pages of runs nobody retried.",
        schedules=(ScheduleSpec(HOUSEKEEPING_CRON, "UTC"),),
        tags=("housekeeping",),
        concurrency_limit=1,
    )


def channels_spec(only: list[str] | None = None) -> DeploymentSpec:
    """The hourly check of the orgs' Zoho notification channels (created, renewed, removed).

    Always there (a no-op while no org turns ``webhooks.zoho_notifications`` on, and it must still
    run to remove the channel of an org that turned them off); ``only`` limits it to those orgs.
    """
    return DeploymentSpec(
        name="hourly",
        flow_name=CHANNELS_FLOW,
        entrypoint=CHANNELS_ENTRYPOINT,
        description="Zoho notification channels (/actions/watch) of every org with "
        "webhooks.zoho_notifications: created when missing, renewed a day before they expire, removed "
        "when the org no longer wants them. Fails when an org's channel could not be set up.",
        parameters={"orgs": sorted(only)} if only is not None else {},
        schedules=(ScheduleSpec(CHANNELS_CRON, "UTC"),),
        tags=("housekeeping", "webhooks"),
        concurrency_limit=1,
    )


def fleet_spec() -> DeploymentSpec:
    """Sync every organisation now: one run per org's deployment (no schedule: each org has its own)."""
    return DeploymentSpec(
        name="all-orgs",
        flow_name=FLEET_FLOW,
        entrypoint=FLEET_ENTRYPOINT,
        description="Start one run of every organisation's deployment (or of the listed orgs) and wait "
        "for them all; a Retry of this run retries the org runs that failed.",
        tags=("fleet",),
        concurrency_limit=1,
    )


def registry_specs(
    orgs: list[OrgConfig] | None = None, *, only: list[str] | None = None
) -> list[DeploymentSpec]:
    """Every deployment of the registry (``ZX_ORGS_DIR``), sorted by org slug, then the shared ones.

    ``only`` keeps the listed orgs' deployments, housekeeping and the channel renewal (limited to
    those orgs), but no sync-all, which would start runs of deployments nobody serves: the demo
    serves just its own org that way.
    """
    from mappings import load_org, load_registry

    if only is not None:
        return [org_spec(load_org(slug)) for slug in sorted(only)] + [housekeeping_spec(), channels_spec(only)]
    orgs = load_registry() if orgs is None else orgs
    return [org_spec(o) for o in sorted(orgs, key=lambda o: o.slug)] + [
        housekeeping_spec(),
        fleet_spec(),
        channels_spec(),
    ]


# --- serve() -------------------------------------------------------------------------------------
def to_runner_deployment(spec: DeploymentSpec) -> RunnerDeployment:
    """The runner deployment ``serve()`` takes (same name, parameters, schedules, tags, limit)."""
    from prefect.flows import load_flow_from_entrypoint
    from prefect.schedules import Cron

    flow = load_flow_from_entrypoint(spec.entrypoint)
    return flow.to_deployment(
        name=spec.name,
        description=spec.description,
        parameters=dict(spec.parameters),
        schedules=[Cron(s.cron, timezone=s.timezone, parameters=dict(s.parameters)) for s in spec.schedules],
        tags=list(spec.tags),
        concurrency_limit=spec.concurrency_limit,
    )


def registry_deployments(
    orgs: list[OrgConfig] | None = None, *, only: list[str] | None = None
) -> list[RunnerDeployment]:
    """Runner deployments for every spec of the registry (or of ``only`` those orgs)."""
    return [to_runner_deployment(s) for s in registry_specs(orgs, only=only)]


def serve_registry(limit: int | None = None, *, only: list[str] | None = None) -> None:
    """Serve every deployment of the registry (or of ``only`` those orgs, see :func:`registry_specs`)
    from this process (no work pool), until interrupted.

    Needs ``PREFECT_API_URL`` (a ``prefect server start``): served deployments live on that server,
    and its UI shows their runs. ``limit`` caps the flow runs this process executes at once (a
    sync-all run waits for its org runs, so leave room for them).
    """
    import os

    from prefect import serve

    if not os.environ.get("PREFECT_API_URL"):
        raise SystemExit(
            "zxsync serve needs PREFECT_API_URL (e.g. http://127.0.0.1:4200/api of a "
            "`prefect server start`): served deployments must live on a lasting server."
        )
    serve(*registry_deployments(only=only), limit=limit)


# --- prefect.yaml --------------------------------------------------------------------------------
YAML_HEADER = """\
# Generated by `zxsync deployments render` from the org registry (orgs/*.yaml): do not edit by hand.
# A test fails when this file is out of date. Deploy on a process work pool with workers:
#   prefect work-pool create {pool} --type process
#   prefect --no-prompt deploy --all          # from this directory, PREFECT_API_URL set
#   prefect worker start --pool {pool}         # on each machine (same ZX_* settings, package installed)
# Entrypoints are module paths and there are no pull steps: workers import the installed package,
# wherever they run. `zxsync serve` serves the same deployments without a work pool.
"""


def _yaml_entry(spec: DeploymentSpec, work_pool: str) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "name": spec.name,
        "entrypoint": spec.entrypoint,
        "description": spec.description,
        "tags": list(spec.tags),
        "parameters": dict(spec.parameters),
    }
    entry["schedules"] = [
        {
            "cron": s.cron,
            "timezone": s.timezone,
            "active": True,
            **({"parameters": dict(s.parameters)} if s.parameters else {}),
        }
        for s in spec.schedules
    ]
    if spec.concurrency_limit is not None:
        entry["concurrency_limit"] = spec.concurrency_limit
    entry["work_pool"] = {"name": work_pool, "work_queue_name": "default"}
    return entry


def render_prefect_yaml(specs: list[DeploymentSpec] | None = None, *, work_pool: str = WORK_POOL) -> str:
    """prefect.yaml text for ``prefect deploy --all`` (deterministic: same registry, same bytes)."""
    import prefect

    specs = registry_specs() if specs is None else specs
    major, minor = prefect.__version__.split(".")[:2]
    document = {
        "name": "zoho-xero-sync",
        "prefect-version": f"{major}.{minor}",
        "build": None,
        "push": None,
        "pull": [],
        "deployments": [_yaml_entry(s, work_pool) for s in specs],
    }
    return YAML_HEADER.format(pool=work_pool) + yaml.dump(
        document, Dumper=_Dumper, sort_keys=False, default_flow_style=None, allow_unicode=True, width=110
    )


class _Dumper(yaml.SafeDumper):
    """Plain YAML: no ``&id001`` anchors for repeated values, lists indented under their key."""

    def ignore_aliases(self, data: Any) -> bool:
        return True

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> Any:
        return super().increase_indent(flow, False)
