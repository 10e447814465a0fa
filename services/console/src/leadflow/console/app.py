"""The console's app: the service kit with the identity API, its schema and its key."""

from __future__ import annotations

import logging
from pathlib import Path

from fastapi import FastAPI

from leadflow.console import keys, store
from leadflow.console.api import ConsoleState, hash_password, router, settings_of, users
from leadflow.console.settings import ConsoleSettings
from leadflow.console.web import mount as mount_web
from leadflow.console.web.imports import MAX_UPLOAD_BYTES
from leadflow.events import ServiceKit, create_service_app
from leadflow.events.access import Role, verifier_of
from leadflow.events.clock import Clock

MIGRATIONS = Path(__file__).resolve().parents[3] / "migrations"
log = logging.getLogger("leadflow.console")


async def load_signing_key(kit: ServiceKit[ConsoleState]) -> None:
    """The key from its file, or from the schema (the first replica to start creates it;
    an insert that loses the race reads the winner's)."""
    s = settings_of(kit)
    if s.console_signing_key_file:
        key = keys.from_file(Path(s.console_signing_key_file))
    else:
        async with kit.unit_of_work() as uow:
            pem = await store.signing_key_pem(uow.tx)
            if pem is None:
                fresh = keys.generate()
                await store.insert_signing_key(uow.tx, fresh.kid, fresh.pem().decode())
                pem = await store.signing_key_pem(uow.tx)
        assert pem is not None
        key = keys.from_pem(pem.encode())
    kit.state.signing_key = key
    verifier_of(kit).add_local_keys(key.jwks())


async def bootstrap_admin(kit: ServiceKit) -> None:
    """``LEADFLOW_CONSOLE_ADMIN_EMAIL`` / ``_PASSWORD``: the first admin, created when no
    user has that e-mail (a later change of the password here changes nothing)."""
    s = settings_of(kit)
    if not (s.console_admin_email and s.console_admin_password):
        return
    password_hash = await hash_password(s.console_admin_password)
    async with kit.unit_of_work() as uow:
        created = await store.insert_user(
            uow.tx,
            email=s.console_admin_email,
            name="Administrator",
            password_hash=password_hash,
            roles=[Role.ADMIN.value],
            rep_id=None,
        )
    if created is not None:
        log.info("created the bootstrap admin user %s", created.email)


def create_kit(
    settings: ConsoleSettings | None = None, *, clock: Clock | None = None
) -> ServiceKit[ConsoleState]:
    return ServiceKit(
        settings or ConsoleSettings(),
        state=ConsoleState(),
        produces=False,
        clock=clock,
        migrations_dir=MIGRATIONS,
        # The imports page forwards a file as it is to intake, which reads a NUL byte as one
        # bad row (and an .xlsx is binary): the console must not refuse the whole upload.
        body_limits={"/imports": MAX_UPLOAD_BYTES + 64 * 1024},
        file_uploads=("/imports",),
        on_startup=(load_signing_key, bootstrap_admin),
    )


def create_app(settings: ConsoleSettings | None = None, *, clock: Clock | None = None) -> FastAPI:
    kit = create_kit(settings, clock=clock)
    app = create_service_app(
        kit,
        router,
        users,
        title="Leadflow console",
        description="The front door for people: users, roles, sign-in, and the token "
        "issuer (JWKS, OpenID discovery) every Leadflow service verifies against; "
        "and the web pages people work in.",
    )
    mount_web(app)
    return app
