"""Each source's payload as :class:`Alert` values, and an alert as an :class:`Incident`.

A payload of the wrong shape raises :class:`~ladder.intake.signatures.Rejected` (400) naming the
field, e.g. ``data.issue.id: missing``. Shapes follow the sources' documented examples:

- Sentry integration platform (``Sentry-Hook-Resource``): ``issue`` (created / resolved / ...),
  ``event_alert`` and ``error`` (fingerprint: the issue id), ``metric_alert`` (the alert rule);
  other resources (installation, comment) are recorded and ignored.
- Datadog: the payload template in the README (``$AGGREG_KEY``, ``$ALERT_CYCLE_KEY``,
  ``$ALERT_ID``, ``$ALERT_TRANSITION``, ``$TAGS``, ...); ``Recovered`` resolves.
- Alertmanager ``version: "4"``: one alert per entry of ``alerts``, by its ``fingerprint``.
- PagerDuty v3: ``event.event_type`` ``incident.triggered``/``reopened`` fire,
  ``incident.resolved`` resolves, other types are ignored; fingerprint: the incident id.
- Standard Webhooks (``/hooks/generic``): ``{"type": ..., "data": {"title": ..., "fingerprint",
  "status": "firing"|"resolved", "severity", "service", "labels", "url", "user_id",
  "request_id"}}``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from ladder.incident import Incident
from ladder.intake.signatures import Rejected
from ladder.sanitize.scrub import scrub_text

__all__ = ["NORMALIZERS", "Alert", "Status", "incident_for"]

Status = Literal["firing", "resolved", "ignored"]


@dataclass
class Alert:
    """One alert out of a delivery, in Ladder's terms."""

    source: str
    status: Status
    fingerprint: str
    title: str
    severity: str | None = None
    service: str | None = None
    link: str | None = None
    user_id: str | None = None
    request_id: str | None = None
    started_at: datetime | None = None
    labels: dict[str, str] = field(default_factory=dict)
    delivery_id: str | None = None  # an id the body carries (PagerDuty's event id)


def _at(obj: Any, path: str, kind: type | tuple[type, ...] = str, required: bool = True) -> Any:
    """``obj`` followed down dotted ``path``; a 400 naming the field when it is missing or of
    the wrong type (``None`` when not ``required``)."""
    cur = obj
    walked: list[str] = []
    for key in path.split("."):
        walked.append(key)
        if isinstance(cur, list) and key.isdigit():
            cur = cur[int(key)] if int(key) < len(cur) else None
        elif isinstance(cur, dict):
            cur = cur.get(key)
        else:
            raise Rejected(400, f"{'.'.join(walked[:-1]) or 'body'}: expected an object")
        if cur is None:
            if required:
                raise Rejected(400, f"{path}: missing")
            return None
    if kind is str and isinstance(cur, int | float) and not isinstance(cur, bool):
        cur = str(cur)
    if not isinstance(cur, kind):
        if required:
            raise Rejected(400, f"{path}: wrong type")
        return None
    if kind is str and required and not cur.strip():
        raise Rejected(400, f"{path}: empty")
    return cur


def _text(value: Any, limit: int = 200) -> str | None:
    if value is None or isinstance(value, dict | list):
        return None
    text = str(value).strip()
    return text[:limit] or None


def _time(value: Any) -> datetime | None:
    try:
        if isinstance(value, int | float) and not isinstance(value, bool):
            stamp = value / 1000 if value > 1e11 else value  # Datadog's $DATE is in ms
            return datetime.fromtimestamp(stamp, UTC)
        if isinstance(value, str) and value.strip():
            if value.strip().isdigit():
                return _time(int(value.strip()))
            parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    except (ValueError, OverflowError, OSError):
        return None
    return None


def _labels(pairs: Any) -> dict[str, str]:
    """Labels from a mapping, Sentry's ``[[k, v], ...]`` / ``[{key, value}]``, or ``k:v`` tags."""
    out: dict[str, str] = {}
    if isinstance(pairs, dict):
        items = list(pairs.items())
    elif isinstance(pairs, list):
        items = []
        for p in pairs:
            if isinstance(p, list | tuple) and len(p) == 2:
                items.append((p[0], p[1]))
            elif isinstance(p, dict) and "key" in p:
                items.append((p.get("key"), p.get("value")))
    elif isinstance(pairs, str):
        items = [t.strip().partition(":")[::2] for t in pairs.split(",") if ":" in t]
    else:
        items = []
    for k, v in items[:100]:
        key, value = _text(k, 100), _text(v)
        if key and value is not None:
            out[key] = value
    return out


def _need_object(payload: Any) -> dict[str, Any]:
    if not isinstance(payload, dict):
        raise Rejected(400, "body: expected a JSON object")
    return payload


# --- Sentry ------------------------------------------------------------------------------------


def _sentry_event(source: dict[str, Any], where: str, action: str) -> Alert:
    event = _at(source, where, dict)
    tags = _labels(event.get("tags"))
    user = event.get("user") if isinstance(event.get("user"), dict) else {}
    return Alert(
        source="sentry",
        status="firing",
        fingerprint=_at(source, f"{where}.issue_id"),
        title=_at(source, f"{where}.title"),
        severity=_text(event.get("level")),
        service=tags.get("service") or _text(event.get("project")),
        link=_text(event.get("web_url") or event.get("issue_url"), 500),
        user_id=_text(user.get("id")) or tags.get("user_id") or tags.get("user"),
        request_id=tags.get("request_id"),
        started_at=_time(event.get("datetime")),
        labels={**tags, "action": action},
    )


def sentry(payload: Any, headers: Mapping[str, str]) -> list[Alert]:
    body = _need_object(payload)
    resource = headers.get("sentry-hook-resource", "").strip()
    action = _text(body.get("action")) or ""
    if resource == "issue":
        issue = _at(body, "data.issue", dict)
        status: Status = (
            "resolved" if action == "resolved" else "firing" if action in ("created", "unresolved")
            else "ignored"
        )  # fmt: skip
        project = issue.get("project") if isinstance(issue.get("project"), dict) else {}
        return [
            Alert(
                source="sentry",
                status=status,
                fingerprint=_at(body, "data.issue.id"),
                title=_at(body, "data.issue.title"),
                severity=_text(issue.get("level")),
                service=_text(project.get("slug")),
                link=_text(issue.get("web_url") or issue.get("permalink"), 500),
                started_at=_time(issue.get("firstSeen")),
                labels={"action": action, "culprit": _text(issue.get("culprit")) or ""},
            )
        ]
    if resource == "event_alert":
        return [_sentry_event(body, "data.event", action)]
    if resource == "error":
        return [_sentry_event(body, "data.error", action)]
    if resource == "metric_alert":
        rule = _at(body, "data.metric_alert.alert_rule", dict)
        return [
            Alert(
                source="sentry",
                status="resolved" if action == "resolved" else "firing",
                fingerprint="metric-" + _at(body, "data.metric_alert.alert_rule.id"),
                title=_text(_at(body, "data.description_title", required=False), 500)
                or _at(body, "data.metric_alert.alert_rule.name"),
                severity=action or None,
                link=_text(_at(body, "data.web_url", required=False), 500),
                labels={"action": action, "rule": _text(rule.get("name")) or ""},
            )
        ]
    return []  # installation, comment, ...: nothing to investigate


# --- Datadog -----------------------------------------------------------------------------------

_DD_RESOLVED = {"recovered"}
_DD_FIRING = {"triggered", "re-triggered", "warn", "renotify", "no data", "re-warned"}


def datadog(payload: Any, headers: Mapping[str, str]) -> list[Alert]:
    body = _need_object(payload)
    key = next(
        (
            _text(body.get(k))
            for k in ("aggregate_key", "alert_cycle_key", "alert_id")
            if _text(body.get(k)) and not str(body.get(k)).startswith("$")
        ),
        None,
    )
    if key is None:
        raise Rejected(400, "aggregate_key: missing (nor alert_cycle_key, nor alert_id)")
    title = _at(body, "title")
    transition = (_text(body.get("transition")) or "triggered").lower()
    tags = _labels(body.get("tags"))
    status: Status = (
        "resolved" if transition in _DD_RESOLVED else "firing" if transition in _DD_FIRING
        else "ignored"
    )  # fmt: skip
    return [
        Alert(
            source="datadog",
            status=status,
            fingerprint=key,
            title=title,
            severity=_text(body.get("priority")) or _text(body.get("alert_type")),
            service=tags.get("service"),
            link=_text(body.get("link"), 500),
            user_id=tags.get("user_id"),
            request_id=tags.get("request_id"),
            started_at=_time(body.get("date")),
            labels={**tags, "transition": transition},
            delivery_id=None,
        )
    ]


# --- Alertmanager ------------------------------------------------------------------------------


def alertmanager(payload: Any, headers: Mapping[str, str]) -> list[Alert]:
    body = _need_object(payload)
    version = _at(body, "version")
    if version != "4":
        raise Rejected(400, f'version: expected "4", got {version[:20]!r}')
    alerts = _at(body, "alerts", list)
    out = []
    for i, a in enumerate(alerts[:1000]):
        where = f"alerts.{i}"
        if not isinstance(a, dict):
            raise Rejected(400, f"{where}: expected an object")
        labels = _labels(a.get("labels"))
        annotations = a.get("annotations") if isinstance(a.get("annotations"), dict) else {}
        title = _text(annotations.get("summary"), 500) or labels.get("alertname")
        if not title:
            raise Rejected(400, f"{where}.labels.alertname: missing (and no annotations.summary)")
        out.append(
            Alert(
                source="alertmanager",
                status="resolved" if a.get("status") == "resolved" else "firing",
                fingerprint=_at(body, f"alerts.{i}.fingerprint"),
                title=title,
                severity=labels.get("severity"),
                service=labels.get("service") or labels.get("job"),
                link=_text(a.get("generatorURL"), 500),
                user_id=labels.get("user_id"),
                request_id=labels.get("request_id"),
                started_at=_time(a.get("startsAt")),
                labels=labels,
            )
        )
    return out


# --- PagerDuty ---------------------------------------------------------------------------------


def pagerduty(payload: Any, headers: Mapping[str, str]) -> list[Alert]:
    body = _need_object(payload)
    event_type = _at(body, "event.event_type")
    event_id = _at(body, "event.id")
    data = _at(body, "event.data", dict)
    if event_type in ("incident.triggered", "incident.reopened"):
        status: Status = "firing"
    elif event_type == "incident.resolved":
        status = "resolved"
    else:
        status = "ignored"
    service = data.get("service") if isinstance(data.get("service"), dict) else {}
    urgency = _text(data.get("urgency"))
    return [
        Alert(
            source="pagerduty",
            status=status,
            fingerprint=_at(body, "event.data.id"),
            title=_at(body, "event.data.title"),
            severity=urgency,
            service=_text(service.get("summary")),
            link=_text(data.get("html_url"), 500),
            started_at=_time(data.get("created_at")),
            labels={"event_type": event_type[:100]},
            delivery_id=event_id[:200],
        )
    ]


# --- Standard Webhooks -------------------------------------------------------------------------


def generic(payload: Any, headers: Mapping[str, str]) -> list[Alert]:
    body = _need_object(payload)
    data = _at(body, "data", dict)
    title = _at(body, "data.title")
    service = _text(data.get("service"))
    fingerprint = _text(data.get("fingerprint"))
    if fingerprint is None:
        fingerprint = hashlib.sha256(f"{service}\0{title}".encode()).hexdigest()[:32]
    kind = _text(body.get("type")) or ""
    status = _text(data.get("status")) or ("resolved" if kind.endswith("resolved") else "firing")
    if status not in ("firing", "resolved"):
        raise Rejected(400, "data.status: expected firing or resolved")
    return [
        Alert(
            source="webhook",
            status=status,  # type: ignore[arg-type]
            fingerprint=fingerprint,
            title=title,
            severity=_text(data.get("severity")),
            service=service,
            link=_text(data.get("url"), 500),
            user_id=_text(data.get("user_id")),
            request_id=_text(data.get("request_id")),
            started_at=_time(body.get("timestamp")),
            labels=_labels(data.get("labels")),
        )
    ]


NORMALIZERS: dict[str, Callable[[Any, Mapping[str, str]], list[Alert]]] = {
    "sentry": sentry,
    "datadog": datadog,
    "alertmanager": alertmanager,
    "pagerduty": pagerduty,
    "generic": generic,
}


def incident_for(alert: Alert, incident_id: str, received_at: datetime) -> Incident:
    """The incident an alert starts; free text (title, labels) scrubbed of PII."""
    labels = {k[:100]: scrub_text(v)[:200] for k, v in alert.labels.items() if v}
    for key, value in (("severity", alert.severity), ("url", alert.link)):
        if value:
            labels[key] = value
    params: dict[str, Any] = {}
    if alert.user_id:
        params["user_id"] = alert.user_id
        if alert.user_id.isdigit():
            params["user_ids"] = [int(alert.user_id)]
    if alert.request_id:
        params["request_id"] = alert.request_id
    started = alert.started_at or received_at
    return Incident(
        id=incident_id,
        title=scrub_text(alert.title)[:500],
        source=alert.source,  # type: ignore[arg-type]
        started_at=min(started, received_at),
        service=alert.service,
        fingerprint=alert.fingerprint[:200],
        labels=labels,
        params=params,
    )
