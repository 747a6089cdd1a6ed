"""operator/Dockerfile, read statically (no container engine here): multi-stage, slim, non-root."""

from __future__ import annotations

import json
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "operator" / "Dockerfile"


def instructions() -> list[tuple[str, str]]:
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def final_stage() -> list[tuple[str, str]]:
    steps = instructions()
    last_from = max(i for i, (word, _) in enumerate(steps) if word == "FROM")
    return steps[last_from:]


def test_multi_stage_from_a_slim_python_311() -> None:
    steps = instructions()
    froms = [rest for word, rest in steps if word == "FROM"]
    assert len(froms) >= 2, "the image must be multi-stage"
    args = dict(rest.split("=", 1) for word, rest in steps if word == "ARG" and "=" in rest)
    bases = {re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], f.split()[0]) for f in froms}
    assert all(re.fullmatch(r"python:3\.11(\.\d+)?-slim(-\w+)?", b) for b in bases), bases
    # The final stage copies the built artefacts and compiles nothing itself.
    final = final_stage()
    assert any(word == "COPY" and "--from=" in rest for word, rest in final)
    assert not any(word == "RUN" and "pip wheel" in rest for word, rest in final)


def test_installs_the_package_as_a_wheel_with_the_crds() -> None:
    runs = " ".join(rest for word, rest in instructions() if word == "RUN")
    copies = [rest for word, rest in instructions() if word == "COPY"]
    assert "pip wheel" in runs and ".whl" in runs
    assert any(c.startswith("crds/") for c in copies), "the wheel carries crds/ as portico/_crds"
    assert any(c.startswith("pyproject.toml") for c in copies)


def test_runs_as_a_numeric_non_root_user() -> None:
    users = [rest for word, rest in final_stage() if word == "USER"]
    assert users, "the final stage must set USER"
    uid = users[-1].split(":")[0]
    # Numeric, so the kubelet can enforce runAsNonRoot without /etc/passwd.
    assert uid.isdigit() and int(uid) != 0


def test_entrypoint_is_portico_run() -> None:
    final = dict(final_stage())
    assert json.loads(final["ENTRYPOINT"]) == ["portico"]
    assert json.loads(final["CMD"]) == ["run"]


def test_chart_runs_the_image_as_the_same_user() -> None:
    deployment = (REPO / "charts" / "portico" / "templates" / "deployment.yaml").read_text()
    uid = [rest for word, rest in final_stage() if word == "USER"][-1].split(":")[0]
    assert f"runAsUser: {uid}" in deployment
