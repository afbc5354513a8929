"""Options of the ``load`` probe (``plugins.load`` in the profile)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

from .mix import LoadTask

#: above this many users the load counts as disruptive and needs allow.disruptive
SAFE_MAX_USERS = 32


class LoadOptions(BaseModel):
    """Bounds and shape of the load test; every bound holds even when the SLO never breaks."""

    model_config = ConfigDict(extra="forbid")
    tasks: list[LoadTask] = Field(default_factory=list, description="weighted mix; default: the profile's GET endpoints")
    max_users: int = Field(SAFE_MAX_USERS, ge=1, le=10_000)
    start_users: int = Field(1, ge=1)
    growth: float = Field(2.0, gt=1.0, le=10.0, description="users multiply by this each step")
    steps: list[int] | None = Field(None, description="explicit user counts per step (overrides start/growth)")
    spawn_rate: float = Field(50.0, gt=0, le=1000, description="users started per second")
    step_s: float = Field(5.0, gt=0, le=600)
    sustained_s: float | None = Field(None, ge=0, le=3600, description="sustained phase; default 2 × step_s, 0: none")
    max_total_s: float = Field(120.0, gt=0, le=3600, description="hard limit of the whole load phase")
    max_requests: int = Field(50_000, ge=1, description="request budget of the load phase")
    max_rps: float | None = Field(None, gt=0, description="request-rate cap of the whole load phase; default and "
                                  "ceiling without allow.disruptive: target.rate_limit_rps")
    slo_p95_ms: float | None = Field(None, gt=0, description="default: the largest SLO of the mix's endpoints, else 500")
    max_error_rate: float = Field(0.01, ge=0, le=1)
    min_step_gain: float = Field(0.1, ge=0, le=10, description="the ladder also stops when a step's throughput "
                                 "grows by less than this share over the best earlier step (the capacity knee); 0: off")
    target_users: int = Field(8, ge=1, description="concurrency the CRM is expected to sustain")
    think_time_s: float = Field(0.0, ge=0, le=60)
    timeout_s: float = Field(10.0, gt=0, le=120)
    local_workers: int | None = Field(None, ge=0, le=64, description="Locust worker processes here; default: cores, max 4")
    external_workers: int = Field(0, ge=0, le=256, description="workers joining from other machines (crm-audit load-worker)")
    master_bind: str = Field("127.0.0.1:0", description="HOST:PORT the Locust master listens on (0: any free port)")
    baseline_samples: int = Field(10, ge=1, le=200)
    recovery_factor: float = Field(1.2, gt=1.0, le=10)
    recovery_floor_ms: float = Field(5.0, ge=0, le=10_000, description="least margin over baseline p50 (timer jitter)")
    recovery_max_s: float = Field(30.0, gt=0, le=600)
    recovery_slo_s: float = Field(10.0, gt=0)
    report_interval_s: float = Field(0.5, gt=0.05, le=5, description="how often workers ship raw rows")

    @field_validator("master_bind")
    @classmethod
    def _bind(cls, v: str) -> str:
        host, _, port = v.rpartition(":")
        if not host or not port.isdigit():
            raise ValueError("must be HOST:PORT, e.g. 0.0.0.0:5557")
        return v
