"""Where provisioning and translation imports stand, and what to run next (pure).

The Portal's status is the memory: attempt numbers, the restart value
handled, the languages imported. Job objects say how a run is going; a
finished run is never re-created when its Job disappears.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from portico.core.conditions import Condition, false, true
from portico.core.names import REFRESH_TRANSLATIONS


def job_state(job: dict[str, Any] | None) -> tuple[str, str]:
    """("Succeeded"|"Failed"|"Running"|"", why-it-failed) for a Job object (or its absence)."""
    if job is None:
        return "", ""
    for cond in (job.get("status") or {}).get("conditions") or ():
        if cond.get("status") != "True":
            continue
        if cond.get("type") == "Complete":
            return "Succeeded", ""
        if cond.get("type") == "Failed":
            reason, message = cond.get("reason", ""), cond.get("message", "")
            return "Failed", f"{reason}: {message}".strip(": ")
    return "Running", ""


@dataclass(frozen=True)
class Attempt:
    number: int
    generation: int
    restart: str
    started_at: str
    state: str = "Pending"
    finished_at: str = ""
    failure: str = ""
    # What of the spec the attempt provisions (provisioning_spec); "" for an attempt
    # recorded before it was kept, which a new generation alone replaces.
    spec: str = ""

    @property
    def finished(self) -> bool:
        return self.state in ("Succeeded", "Failed")

    def status(self, job_name: str) -> dict[str, Any]:
        out: dict[str, Any] = {
            "attempt": self.number,
            "job": job_name,
            "generation": self.generation,
            "restart": self.restart,
            "state": self.state,
            "startedAt": self.started_at,
        }
        if self.finished_at:
            out["finishedAt"] = self.finished_at
        if self.spec:
            out["specHash"] = self.spec
        return out


# Site operations: they change what the site does, not what is installed, so editing
# them starts no provisioning attempt.
NOT_PROVISIONED = frozenset({"state", "maintenance", "access"})


def provisioning_spec(spec: Mapping[str, Any]) -> str:
    """A hash of the spec fields a provisioning attempt depends on."""
    kept = {k: v for k, v in spec.items() if k not in NOT_PROVISIONED}
    text = json.dumps(kept, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def attempt_for(
    status: dict[str, Any], generation: int, restart: str, now: str, spec: str = ""
) -> Attempt:
    """The attempt this generation and restart value call for: the current one, or a new one.

    A new generation that changed only site operations (spec.state, spec.maintenance:
    the same SPEC hash) keeps the current attempt.
    """
    prov = status.get("provisioning") or {}
    if not prov:
        return Attempt(1, generation, restart, now, spec=spec)
    handled = prov.get("restart", "")
    known = prov.get("specHash", "")
    same = prov.get("generation") == generation or (bool(known) and known == spec)
    if not same or (restart and restart != handled):
        return Attempt(int(prov["attempt"]) + 1, generation, restart or handled, now, spec=spec)
    return Attempt(
        number=int(prov["attempt"]),
        generation=generation,
        restart=handled,
        started_at=prov.get("startedAt", now),
        state=prov.get("state", "Pending"),
        finished_at=prov.get("finishedAt", ""),
        spec=known,
    )


def observe_attempt(attempt: Attempt, job: dict[str, Any] | None, now: str) -> Attempt:
    """Fold the attempt's Job into it. A finished attempt stays finished."""
    if attempt.finished:
        state, why = job_state(job)
        return replace(attempt, failure=why) if attempt.state == "Failed" else attempt
    state, why = job_state(job)
    if state in ("Succeeded", "Failed"):
        return replace(attempt, state=state, finished_at=now, failure=why)
    return replace(attempt, state="Running" if state else "Pending")


def solutions_condition(attempt: Attempt, job_name: str) -> Condition:
    if attempt.state == "Succeeded":
        return true(
            "SolutionsInstalled", "Installed", f"attempt {attempt.number} installed the solutions"
        )
    if attempt.state == "Failed":
        detail = f": {attempt.failure}" if attempt.failure else ""
        return false(
            "SolutionsInstalled",
            "InstallFailed",
            f"provisioning Job {job_name} failed{detail}; fix the cause, then restart with "
            "`portico restart` or edit the spec",
        )
    return false(
        "SolutionsInstalled", "Installing", f"provisioning attempt {attempt.number} is running"
    )


@dataclass(frozen=True)
class Translations:
    run: int
    languages: tuple[str, ...]
    imported: tuple[str, ...]
    refresh: str
    state: str  # "", Pending, Running, Succeeded, Failed
    failure: str = ""

    @property
    def active(self) -> bool:
        """The run's Job should exist (it has not finished)."""
        return self.run > 0 and self.state in ("Pending", "Running")

    def status(self, job_name: str) -> dict[str, Any]:
        return {
            "run": self.run,
            "job": job_name if self.run else "",
            "languages": list(self.languages),
            "imported": list(self.imported),
            "refresh": self.refresh,
            "state": self.state or "Succeeded",
        }


def translations_for(
    status: dict[str, Any],
    additional: tuple[str, ...],
    refresh: str,
    job: dict[str, Any] | None,
    provisioned: bool,
) -> Translations:
    """Fold the current run's Job in, then start a run for what is still missing."""
    st = status.get("translations") or {}
    current = Translations(
        run=int(st.get("run", 0)),
        languages=tuple(st.get("languages", ())),
        imported=tuple(x for x in st.get("imported", ()) if x in additional),
        refresh=st.get("refresh", ""),
        state=st.get("state", "") if st.get("run") else "",
    )
    if current.active:
        state, why = job_state(job)
        if state == "Succeeded":
            done = tuple(x for x in additional if x in current.imported or x in current.languages)
            current = replace(current, state=state, imported=done)
        elif state == "Failed":
            current = replace(current, state=state, failure=why)
        else:
            current = replace(current, state="Running" if state else "Pending")
    refreshing = bool(refresh) and refresh != current.refresh
    wanted = additional if refreshing else tuple(x for x in additional if x not in current.imported)
    retry_same = current.state == "Failed" and wanted == current.languages and not refreshing
    if not wanted or current.active or not provisioned or retry_same:
        return current
    return Translations(
        run=current.run + 1,
        languages=wanted,
        imported=current.imported,
        refresh=refresh if refreshing else current.refresh,
        state="Pending",
    )


def translations_condition(t: Translations, job_name: str) -> Condition:
    if t.state == "Failed":
        return false(
            "TranslationsImported",
            "ImportFailed",
            f"translations Job {job_name} failed: {t.failure or 'see its logs'}; set annotation "
            f"{REFRESH_TRANSLATIONS} to a new value to retry",
        )
    if t.active:
        return false("TranslationsImported", "Importing", f"importing {', '.join(t.languages)}")
    if t.run == 0:
        return false("TranslationsImported", "Waiting", "waits for provisioning to finish")
    return true("TranslationsImported", "Imported", f"imported {', '.join(t.imported)}")


def termination_message(pods: list[dict[str, Any]], container: str = "portal") -> str:
    """The newest failed pod's termination message (a Job's failure in the runtime's words).

    PODS: the Job's pods (label `batch.kubernetes.io/job-name`). One line, at most 300
    characters, so it fits a condition message; "" when no pod says anything.
    """
    best: tuple[str, str] = ("", "")
    for pod in pods:
        for status in (pod.get("status") or {}).get("containerStatuses") or ():
            if status.get("name") != container:
                continue
            terminated = (status.get("state") or {}).get("terminated") or {}
            message = str(terminated.get("message") or "").strip()
            finished = str(terminated.get("finishedAt") or "")
            if message and terminated.get("exitCode", 0) != 0 and finished >= best[0]:
                best = (finished, message)
    line = " ".join(best[1].split())
    return line if len(line) <= 300 else line[:297] + "..."
