"""notify settings: the kernel's variables plus where mail goes and what links point at.

| variable | default | meaning |
|---|---|---|
| `LEADFLOW_PORT` | `8006` | HTTP port |
| `LEADFLOW_DB_SCHEMA` | `notify` | Postgres schema |
| `LEADFLOW_SMTP_URL` | `smtp://127.0.0.1:1025` | the mail relay: `smtp://` (STARTTLS when offered), `smtps://` (implicit TLS), optional `user:password@` |
| `LEADFLOW_MAIL_FROM` | `Leadflow <leadflow@localhost>` | the From of every e-mail |
| `LEADFLOW_MAIL_UI_URL` | empty | where people read the local mail catcher (Mailpit), printed by `make run` |
| `LEADFLOW_CONSOLE_URL` | `http://127.0.0.1:8000` | the console: e-mails link to `<console>/leads/{id}` |
| `LEADFLOW_NOTIFY_PUBLIC_URL` | `http://127.0.0.1:8006` | notify's own address as recipients reach it (unsubscribe, open and click tracking) |
| `LEADFLOW_NOTIFY_MARKETING_OPS_EMAIL` | empty | who SLA escalations naming `marketing_ops` are sent to (empty: nobody) |
| `LEADFLOW_NOTIFY_SLACK_WEBHOOK_URL` | empty | a Slack-compatible incoming webhook told of every assignment and breach (empty: none) |
| `LEADFLOW_NOTIFY_WEBHOOKS_ALLOW_PRIVATE` | `false` | allow webhook endpoints on loopback and private addresses (`make run` allows them) |
| `LEADFLOW_NOTIFY_WEBHOOK_TIMEOUT_SECONDS` | `10` | one delivery attempt's time limit |
| `LEADFLOW_NOTIFY_WEBHOOK_GIVE_UP_HOURS` | `72` | an endpoint failing this long is disabled (its messages wait for a re-enable or replay) |
| `LEADFLOW_NOTIFY_DIGEST_HOUR` | `8` | hour (UTC) the daily digest goes out to people who chose it |
| `LEADFLOW_NOTIFY_NURTURE_MIN_HOURS` | `24` | at most one nurture e-mail per lead in this many hours |
| `LEADFLOW_INTAKE_URL` | `http://127.0.0.1:8001` | intake, where unsubscribes and e-mail opens and clicks are recorded |
| `LEADFLOW_NOTIFY_INTAKE_API_KEY` | empty | intake API key (scope `activities`) notify records opens, clicks and opt-outs with |

Everything else (`DATABASE_URL`, `KAFKA_BOOTSTRAP_SERVERS`, `LEADFLOW_ADMIN_TOKEN`, ...) is
documented in ``leadflow.events.settings``.
"""

from __future__ import annotations

from pydantic import Field

from leadflow.events.settings import ServiceSettings


class NotifySettings(ServiceSettings):
    service_name: str = "notify"
    port: int = 8006
    smtp_url: str = "smtp://127.0.0.1:1025"
    mail_from: str = "Leadflow <leadflow@localhost>"
    mail_ui_url: str = ""
    console_url: str = "http://127.0.0.1:8000"
    notify_public_url: str = "http://127.0.0.1:8006"
    notify_marketing_ops_email: str = ""
    notify_slack_webhook_url: str = ""
    notify_webhooks_allow_private: bool = False
    notify_webhook_timeout_seconds: float = Field(default=10.0, gt=0)
    notify_webhook_give_up_hours: float = Field(default=72.0, gt=0)
    notify_digest_hour: int = Field(default=8, ge=0, le=23)
    notify_nurture_min_hours: float = Field(default=24.0, ge=0)
    intake_url: str = "http://127.0.0.1:8001"
    notify_intake_api_key: str = ""
