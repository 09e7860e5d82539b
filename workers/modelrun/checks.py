"""Cheap checks of an uploaded model file, in the parent, before any TensorFlow starts.

The child loads a model with ``keras.saving.load_model(safe_mode=True, compile=False)``, which
refuses Lambda layers, TFSMLayer, vocabulary files and unregistered classes on its own. These
checks refuse the common cases first, so they cost no TensorFlow start-up and get a clear
message: non-zip uploads (HDF5, pickles — nothing is ever unpickled or read as HDF5 here),
oversized archives, and configs that name Lambda layers or code outside Keras.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

from workers.engine.errors import show
from workers.engine.sniff import read_head, sniff

from .limits import MiB, SandboxLimits
from .refusals import refusal

MAX_CONFIG_BYTES = 16 * MiB
# Layers whose config carries code or reaches outside the archive. safe_mode refuses them too;
# naming them here gives a clear message without starting TensorFlow.
_CODE_LAYERS = {"Lambda", "__lambda__", "TFSMLayer", "TorchModuleWrapper", "JaxLayer", "FlaxLayer"}


def check_model_file(path: str | Path, *, max_model_bytes: int = SandboxLimits.max_model_bytes) -> None:
    """Refuse anything that is not a plausible Keras 3 ``.keras`` archive, without TensorFlow."""
    path = Path(path)
    try:
        size, head = read_head(path)
    except OSError:
        raise refusal("unreadable") from None
    if size > max_model_bytes:
        raise refusal("too_large", size=size / MiB, limit=max_model_bytes / MiB)
    if size == 0:
        raise refusal("empty")
    kind = sniff(head)
    if kind in ("hdf5", "pickle"):
        raise refusal(kind)
    if kind != "zip":
        raise refusal("not_zip")
    try:
        with zipfile.ZipFile(path) as zf:
            infos = {info.filename: info for info in zf.infolist()}
            expanded = sum(info.file_size for info in infos.values())
            if expanded > 2 * max_model_bytes:
                raise refusal("expands_too_far", expanded=expanded / MiB, limit=2 * max_model_bytes / MiB)
            if "saved_model.pb" in {name.rsplit("/", 1)[-1] for name in infos}:
                raise refusal("saved_model")
            if "config.json" not in infos:
                raise refusal("no_config")
            if "model.weights.h5" not in infos and "model.weights.npz" not in infos:
                raise refusal("no_weights")
            if infos["config.json"].file_size > MAX_CONFIG_BYTES:
                raise refusal("config_too_large")
            raw = zf.read("config.json")
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, NotImplementedError):
        raise refusal("damaged_zip") from None
    try:
        config = json.loads(raw)
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise refusal("config_not_json") from None
    if not isinstance(config, dict) or "class_name" not in config:
        raise refusal("config_not_model")
    scan_config(config)


def scan_config(config: dict) -> None:
    """Refuse a model config that names a Lambda layer or anything outside Keras."""
    stack: list[object] = [config]
    while stack:
        node = stack.pop()
        if isinstance(node, list):
            stack.extend(node)
            continue
        if not isinstance(node, dict):
            continue
        class_name = node.get("class_name")
        if class_name in _CODE_LAYERS:
            raise refusal("code_layer", layer="Lambda" if "lambda" in class_name.lower() else class_name)
        module = node.get("module")
        registered = node.get("registered_name")
        if (isinstance(module, str) and module.split(".")[0] not in ("keras", "builtins")) or (
            isinstance(registered, str) and registered != class_name
        ):
            name = registered if isinstance(registered, str) else class_name
            raise refusal("custom_code", name=show(name))
        for key, value in node.items():
            # The training set-up (optimizer, loss) is never loaded: compile=False.
            if key != "compile_config" and isinstance(value, (dict, list)):
                stack.append(value)
