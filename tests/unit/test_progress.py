"""Attempts, restarts and translation runs, decided from status and Jobs alone."""

from __future__ import annotations

from portico.core import progress

T0, T1 = "2026-01-01T00:00:00Z", "2026-01-01T00:05:00Z"


def job(kind: str | None, reason: str = "", message: str = "") -> dict:
    conditions = [{"type": kind, "status": "True", "reason": reason, "message": message}]
    return {"status": {"conditions": conditions if kind else []}}


def status_after(attempt: progress.Attempt) -> dict:
    return {"provisioning": attempt.status("job")}


def test_first_attempt_then_steady() -> None:
    first = progress.attempt_for({}, 1, "", T0)
    assert (first.number, first.state) == (1, "Pending")
    running = progress.observe_attempt(first, job(None), T0)
    assert running.state == "Running"
    done = progress.observe_attempt(running, job("Complete"), T1)
    assert (done.state, done.finished_at) == ("Succeeded", T1)
    again = progress.attempt_for(status_after(done), 1, "", T1)
    assert (again.number, again.state) == (1, "Succeeded")
    # A finished attempt stays finished even when its Job is gone.
    assert progress.observe_attempt(again, None, T1).state == "Succeeded"


def test_failure_carries_the_jobs_words() -> None:
    failed = progress.observe_attempt(
        progress.attempt_for({}, 1, "", T0),
        job("Failed", "BackoffLimitExceeded", "Job has reached the specified backoff limit"),
        T1,
    )
    condition = progress.solutions_condition(failed, "p-provision-1")
    assert condition.reason == "InstallFailed"
    assert "BackoffLimitExceeded: Job has reached the specified backoff limit" in condition.message


def test_restart_annotation_starts_one_new_attempt() -> None:
    done = progress.observe_attempt(progress.attempt_for({}, 1, "", T0), job("Failed"), T0)
    restarted = progress.attempt_for(status_after(done), 1, "r1", T1)
    assert (restarted.number, restarted.restart, restarted.state) == (2, "r1", "Pending")
    same = progress.attempt_for(status_after(restarted), 1, "r1", T1)
    assert same.number == 2
    removed = progress.attempt_for(status_after(restarted), 1, "", T1)
    assert removed.number == 2 and removed.restart == "r1"


def test_new_generation_starts_a_new_attempt_even_from_failed() -> None:
    failed = progress.observe_attempt(progress.attempt_for({}, 1, "", T0), job("Failed"), T0)
    edited = progress.attempt_for(status_after(failed), 2, "", T1)
    assert (edited.number, edited.generation, edited.state) == (2, 2, "Pending")


def test_translations_wait_for_provisioning_then_run_once() -> None:
    waiting = progress.translations_for({}, ("de-DE",), "", None, provisioned=False)
    assert waiting.run == 0
    assert progress.translations_condition(waiting, "j").reason == "Waiting"
    started = progress.translations_for({}, ("de-DE",), "", None, provisioned=True)
    assert (started.run, started.languages, started.state) == (1, ("de-DE",), "Pending")
    status = {"translations": started.status("p-translations-1")}
    done = progress.translations_for(status, ("de-DE",), "", job("Complete"), provisioned=True)
    assert (done.run, done.imported, done.state) == (1, ("de-DE",), "Succeeded")
    assert progress.translations_condition(done, "j").ok
    # Steady: nothing new to import, no new run.
    steady = progress.translations_for(
        {"translations": done.status("j")}, ("de-DE",), "", None, True
    )
    assert steady.run == 1 and not steady.active


def test_adding_a_language_imports_only_it_and_refresh_imports_all() -> None:
    base = progress.Translations(1, ("de-DE",), ("de-DE",), "", "Succeeded")
    status = {"translations": base.status("j")}
    added = progress.translations_for(status, ("de-DE", "fr-FR"), "", None, True)
    assert (added.run, added.languages) == (2, ("fr-FR",))
    refreshed = progress.translations_for(status, ("de-DE",), "now", None, True)
    assert (refreshed.run, refreshed.languages, refreshed.refresh) == (2, ("de-DE",), "now")


def test_failed_import_is_not_retried_until_asked() -> None:
    running = progress.Translations(1, ("de-DE",), (), "", "Running")
    failed = progress.translations_for(
        {"translations": running.status("j")}, ("de-DE",), "", job("Failed"), True
    )
    assert failed.state == "Failed"
    again = progress.translations_for(
        {"translations": failed.status("j")}, ("de-DE",), "", None, True
    )
    assert again.run == 1
    assert progress.translations_condition(failed, "j").reason == "ImportFailed"
