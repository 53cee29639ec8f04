"""Where an environment's Flipper lives, as its YAML says: the app's ActiveRecord tables
(``flipper.database.dsn``) or a flipper-api endpoint (``flipper.api``). A model the runbook
loader reads without loading psycopg or httpx with it."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ladder.secrets import Dsn, SecretRef


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FlipperDatabase(_Strict):
    dsn: Dsn = Field(
        description="the app's PRIMARY database (Flipper's tables), without a password or as a "
        "secret reference: the only write Ladder makes to production"
    )


class FlipperApi(_Strict):
    url: str = Field(
        pattern=r"^https?://[^\s@]+$",
        description="where flipper-api is mounted, e.g. https://shop.example.com/flipper/api",
    )
    auth_header: str = Field(
        "Authorization",
        pattern=r"^[A-Za-z0-9\-]{1,100}$",
        description="the header the mount checks (flipper-api has no auth of its own)",
    )
    auth: SecretRef | None = Field(
        None, description="the header's whole value (e.g. 'Bearer …'), as a secret reference"
    )


class FlipperConfig(_Strict):
    """Exactly one adapter: ``database`` (ActiveRecord tables) or ``api`` (flipper-api)."""

    database: FlipperDatabase | None = None
    api: FlipperApi | None = None
    unavailable: str | None = Field(
        None,
        exclude=True,
        description="why the sandbox's app cannot read flags (the missing Debian package); "
        "filled in by bind_environment, never read from YAML",
    )

    @field_validator("unavailable", mode="before")
    @classmethod
    def _not_from_yaml(cls, value: object) -> None:
        if value is not None:
            raise ValueError("unavailable is the sandbox's own note, not a setting")
        return None

    @model_validator(mode="after")
    def _one_adapter(self) -> FlipperConfig:
        if (self.database is None) == (self.api is None):
            raise ValueError("give exactly one of database (Flipper's tables) or api (flipper-api)")
        return self


def sandbox_flipper(production_dsn: str, shop: dict[str, object] | None) -> FlipperConfig:
    """Flipper's tables in the sandbox's production database, which the sandbox's app reads;
    unavailable, naming why (the missing Debian package), when no app here reads them."""
    flipper = FlipperConfig(database=FlipperDatabase(dsn=production_dsn))
    if not shop:
        why = "the sandbox's app is not running: `ladder sandbox up` starts it"
    else:
        why = shop.get("unavailable") or shop.get("flipper_unavailable")
    return flipper.model_copy(update={"unavailable": str(why)}) if why else flipper
