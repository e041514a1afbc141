"""Which failures a task retries: transient API trouble only (429, 5xx, timeouts, broken answers).

Permanent problems (a refused request, a broken connection that needs reconnecting, a spent
day's budget) fail at once with their own message; per-record problems never get here — they
are rejects.
"""

from __future__ import annotations

from typing import Any

from prefect.tasks import exponential_backoff

from connectors.errors import ApiError, BudgetExhausted, TokenRefreshError
from zxsync.settings import get_settings


class UnknownOutcome(Exception):
    """Xero's answer did not say what became of some elements: a retry settles them by lookup."""


def transient(task: Any, task_run: Any, state: Any) -> bool:
    """Prefect ``retry_condition_fn``: retry only what may go away by itself."""
    try:
        state.result()
    except (BudgetExhausted, TokenRefreshError):
        return False
    except ApiError as exc:
        return exc.retryable
    except (UnknownOutcome, ConnectionError, TimeoutError):
        return True
    except Exception:  # noqa: BLE001 - anything else is permanent: fail at once, with its own message
        return False
    return False


def _options() -> dict[str, Any]:
    settings = get_settings()
    return {
        "retries": settings.task_retries,
        "retry_delay_seconds": exponential_backoff(backoff_factor=settings.task_retry_delay_seconds),
        "retry_jitter_factor": 0.5,
        "retry_condition_fn": transient,
    }


#: Options for every task that calls an API.
TRANSIENT = _options()
