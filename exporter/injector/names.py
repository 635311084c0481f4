"""Every annotation, label, container and volume name the injector reads or writes.

Users write the ``model-health.io/…`` keys on their pods (or pod templates); the rest are
names the injector gives the objects it adds, chosen so they never clash with a model
server's own (a clash is refused, not overwritten).
"""

from __future__ import annotations

DOMAIN = "model-health.io"

# Read from the pod: opt-in/out, model identity, overrides.
INJECT = f"{DOMAIN}/inject"
MODEL = f"{DOMAIN}/model"
MODEL_VERSION = f"{DOMAIN}/model-version"
GPU_MODE = f"{DOMAIN}/gpu"

# Written on the pod: what the injector did, and the sidecar's generated config.
STATUS = f"{DOMAIN}/status"
STATUS_INJECTED = "injected"
SIDECAR_CONFIG = f"{DOMAIN}/sidecar-config"
# A label (selectable, unlike annotations): a PodMonitor finds injected pods by it.
SIDECAR_LABEL = f"{DOMAIN}/sidecar"

# Objects added to the pod spec.
CONTAINER = "model-health-sidecar"
CONFIG_VOLUME = "model-health-config"
TMP_VOLUME = "model-health-tmp"
CONFIG_DIR = "/etc/model-health/sidecar"
CONFIG_FILE = "config.yaml"
PORT_NAME = "model-health"

# Serving frameworks' own pod labels (their source code's constants, not guesses):
# KServe's InferenceServicePodLabelKey, Seldon Core v1's Label_seldon_id / Label_model,
# Seldon Core v2's ServerLabelNameKey.
KSERVE_ISVC = "serving.kserve.io/inferenceservice"
SELDON_DEPLOYMENT = "seldon-deployment-id"
SELDON_MODEL_UNIT = "seldon.io/model"
SELDON_V2_SERVER = "seldon-server-name"
APP_NAME = "app.kubernetes.io/name"
APP_VERSION = "app.kubernetes.io/version"
