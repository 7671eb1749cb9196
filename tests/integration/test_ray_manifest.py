"""The KubeRay RayService manifest in docs/SCALING.md builds the application it describes."""

from __future__ import annotations

import re

import yaml
from ray._common.utils import import_attr

from server.workers.ray_backend import GPU_DEPLOYMENT, INGRESS_DEPLOYMENT
from tests.conftest import REPO


def rayservice() -> dict:
    blocks = re.findall(r"```yaml\n(.*?)```", (REPO / "docs" / "SCALING.md").read_text(), re.DOTALL)
    (manifest,) = [yaml.safe_load(block) for block in blocks if "kind: RayService" in block]
    return manifest


def test_the_manifest_imports_the_app_builder_with_its_settings() -> None:
    manifest = rayservice()
    serve_config = yaml.safe_load(manifest["spec"]["serveConfigV2"])
    (app,) = serve_config["applications"]
    builder = import_attr(app["import_path"])
    ingress = builder(app["args"])._bound_deployment  # what `serve deploy` would deploy (Serve's private field)
    assert ingress.name == INGRESS_DEPLOYMENT
    (gpu_app,) = ingress.init_args  # the ingress is bound to the GPU deployment's application
    gpu = gpu_app._bound_deployment
    assert gpu.name == GPU_DEPLOYMENT and gpu.ray_actor_options["num_gpus"] == 1
    autoscaling = gpu._deployment_config.autoscaling_config
    assert (autoscaling.min_replicas, autoscaling.max_replicas) == (1, 8)
    (settings,) = gpu.init_args
    assert settings.storage == "s3" and settings.ray_models_per_replica == 3 and settings.data_dir.is_absolute()
    assert settings.database_url.startswith("postgresql+psycopg://")
