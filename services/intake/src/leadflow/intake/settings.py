"""Intake's configuration (environment only). Besides the kernel's variables
(see ``leadflow.events.settings``), intake reads:

| variable | default | meaning |
|---|---|---|
| `LEADFLOW_PORT` | `8001` | HTTP port of intake |
| `LEADFLOW_DB_SCHEMA` | `intake` | Postgres schema of intake |
| `LEADFLOW_INTAKE_DEFAULT_REGION` | empty | ISO-3166 alpha-2 used to read phone numbers without `+` when the contact has no country |
| `LEADFLOW_INTAKE_KEY_RATE_PER_SECOND` | `200` | sustained requests per second per API key |
| `LEADFLOW_INTAKE_KEY_BURST` | `400` | burst allowance per API key |
| `LEADFLOW_INTAKE_IP_RATE_PER_SECOND` | `10` | sustained requests per second per client IP on public form posts and failed authentications |
| `LEADFLOW_INTAKE_IP_BURST` | `30` | burst allowance per client IP |
| `LEADFLOW_INTAKE_TRUST_FORWARDED_FOR` | `false` | take the client IP from `X-Forwarded-For` (only behind a trusted proxy) |
| `LEADFLOW_INTAKE_MAX_IMPORT_BYTES` | `209715200` | body limit of `POST /v1/imports` (CSV uploads) |
| `LEADFLOW_INTAKE_MAX_BATCH_ITEMS` | `1000` | most scans or activities in one request |
| `LEADFLOW_INTAKE_IMPORT_BATCH_ROWS` | `500` | CSV rows per import transaction |
| `LEADFLOW_INTAKE_GROUP_COMMIT_MAX` | `256` | most single inquiries (API, forms) committed together in one transaction |
| `LEADFLOW_INTAKE_GROUP_COMMIT_TRANSACTIONS` | `4` | most group-commit transactions in flight at once per process (more than one only while a full batch of `..._GROUP_COMMIT_MAX` waits) |
| `LEADFLOW_INTAKE_GROUP_COMMIT_INTERVAL_MS` | `10` | while requests overlap (the last group-commit transaction carried more than one inquiry), the least time between the starts of two transactions; requests wait for it and share the next one (`0`: no spacing) |
| `LEADFLOW_INTAKE_API_KEY_CACHE_SECONDS` | `5` | how long a verified API key, or a web form's definition, is trusted without looking again (a revocation or form change takes effect at once on the replica that made it, within this on others) |
| `LEADFLOW_INTAKE_BOOTSTRAP_API_KEY` | empty | if set, this key is stored (hashed) at startup with scopes inquiries, scans, activities |
| `LEADFLOW_INTAKE_BOOTSTRAP_FORM_KEY` | empty | if set, a demo web form with this key is created at startup if missing |
| `LEADFLOW_INTAKE_BOOTSTRAP_FORM_ORIGINS` | `http://localhost:8001` | comma-separated allowed origins of the demo form (`*` is refused) |
"""

from __future__ import annotations

from leadflow.events.settings import ServiceSettings


class IntakeSettings(ServiceSettings):
    service_name: str = "intake"
    port: int = 8001

    intake_default_region: str = ""
    intake_key_rate_per_second: float = 200.0
    intake_key_burst: int = 400
    intake_ip_rate_per_second: float = 10.0
    intake_ip_burst: int = 30
    intake_trust_forwarded_for: bool = False
    intake_max_import_bytes: int = 200 * 1024 * 1024
    intake_max_batch_items: int = 1000
    intake_import_batch_rows: int = 500
    intake_group_commit_max: int = 256
    intake_group_commit_transactions: int = 4
    intake_group_commit_interval_ms: float = 10.0
    intake_api_key_cache_seconds: float = 5.0
    intake_bootstrap_api_key: str = ""
    intake_bootstrap_form_key: str = ""
    intake_bootstrap_form_origins: str = "http://localhost:8001"
