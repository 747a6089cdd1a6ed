"""What an external scanner (Checkov) would flag on a child that Portico does on purpose (pure).

Each such check is skipped on the child itself with an annotation
(`checkov.io/skipN: CHECK_ID=why`), only when it applies, so a scan of what the
operator applies shows no failed check and every skip says why. The reasons hold no
`=` (Checkov splits the value at it).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

SKIP_PREFIX = "checkov.io/skip"
PORTICO_UID = 65532  # the user Portico's own images run as (runtime/Dockerfile)

CPU_LIMIT = (
    "CKV_K8S_11",
    "no CPU limit unless spec.runtime.resources sets one: a limit throttles the runtime under "
    "load; CPU is requested and memory is limited",
)
PULL_POLICY = (
    "CKV_K8S_15",
    "the operator's imagePullPolicy setting (IfNotPresent: a digest or a release tag that is "
    "never pushed again needs no pull at each start; Never where images are preloaded)",
)
IMAGE_UID = (
    "CKV_K8S_40",
    "a portal's own runtime image runs as its image's user: runAsNonRoot is enforced and "
    "Portico's images run as 65532",
)
IMAGE_TAG = (
    "CKV_K8S_43",
    "the image is referenced by tag: Portico builds its images and publishes no digest; set "
    "the runtime image (or spec.runtime.image) to NAME@sha256:DIGEST to pin it",
)


def by_digest(image: str) -> bool:
    return "@sha256:" in image


def pod_skips(
    image: str,
    pull_policy: str,
    portico_image: bool,
    resources: Mapping[str, Any],
) -> dict[str, str]:
    """The skip annotations of a Deployment or Job whose one container runs IMAGE."""
    checks = []
    if "cpu" not in (resources.get("limits") or {}):
        checks.append(CPU_LIMIT)
    if pull_policy != "Always":
        checks.append(PULL_POLICY)
    if not portico_image:
        checks.append(IMAGE_UID)
    if not by_digest(image):
        checks.append(IMAGE_TAG)
    return {f"{SKIP_PREFIX}{i}": f"{check}={why}" for i, (check, why) in enumerate(checks, 1)}
