"""Pretrained bundles: trained 2D-to-3D pipelines that load without training.

A *bundle* is a directory written by :func:`jpose.inference.export.export_bundle`
(``python -m experiments.export``) from a finished training run. It holds the inference
networks only (no optimiser moments, discriminators or generators) and loads wherever a
training work directory does
(``jpose.inference.load_predictor``, ``python -m experiments.evaluate --workdir=BUNDLE``,
``jpose --workdir=BUNDLE``)::

    bundle.json       format and version, name, one-line description, stored dtype, the
                      checkpoint step of each stage, and which players of which stage it holds
    weights.npz       the variables, one array per leaf, keys '<stage>/<player>/<collection>/
                      <module>/.../<leaf>' ('/'-joined); float16 or float32 (see below)
    weights.sha256    sha256 of weights.npz, ``sha256sum`` format ('<hex>  weights.npz')
    config.json       the training config (as in the work directory)
    model.json        what inference needs beyond the weights: layout, 2D normalisation,
                      standardisation statistics, camera priors
    status.json       the run's finished-stage record (a bundle is exported from finished runs)
    card.json         machine-readable model card: data and licences, command, commit, wall time,
                      test numbers (float32 and stored weights), the dtype decision
    MODEL_CARD.md     the same for people

Weights are restored as float32 (the training dtype); float16 storage is used only when the
export measured that it moves no reported test number (P1 / P2 / N-MPJPE, per action and means)
by more than 0.1 mm. The sha256 is checked on every load.

Shipped bundles live in ``jpose/pretrained/<name>/`` (:func:`list_pretrained`,
:func:`pretrained_path`, :func:`jpose.inference.load_pretrained`: a
:class:`~jpose.inference.Predictor`, whose docstring gives shapes and units).
"""

from __future__ import annotations

import hashlib
import json
import os
import pathlib
import zipfile
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from flax import traverse_util

__all__ = [
    "BUNDLE_FILE",
    "WEIGHTS_FILE",
    "SHA256_FILE",
    "PRETRAINED_DIR",
    "BundleError",
    "list_pretrained",
    "pretrained_descriptions",
    "pretrained_path",
    "resolve_bundle",
    "is_bundle",
    "read_bundle_info",
    "sha256_file",
    "verify_bundle",
    "flatten_variables",
    "unflatten_variables",
    "write_weights",
    "write_bundle_weights",
    "read_weights",
    "bundle_variables",
]

BUNDLE_FILE = "bundle.json"
WEIGHTS_FILE = "weights.npz"
SHA256_FILE = "weights.sha256"
FORMAT = "jpose-bundle"
FORMAT_VERSION = 1
PRETRAINED_DIR = pathlib.Path(__file__).resolve().parents[1] / "pretrained"

# a fixed zip timestamp: the same variables always give the same file (and sha256)
_ZIP_DATE = (2020, 1, 1, 0, 0, 0)


class BundleError(ValueError):
    """A bundle that cannot be used: unknown name, missing file, checksum mismatch, or a request
    for networks / steps it does not hold. A ``ValueError``: the command lines report it as a
    user error (one message, exit status 2)."""


# ------------------------------------------------------------------------------------------------
# Shipped bundles
# ------------------------------------------------------------------------------------------------


def list_pretrained() -> list[str]:
    """Names of the bundles shipped in ``jpose/pretrained`` (sorted), e.g.
    ``["camerapose_cmu_coco", "lifter_cmu"]`` (descriptions: :func:`pretrained_descriptions`)."""
    if not PRETRAINED_DIR.is_dir():
        return []
    return sorted(p.name for p in PRETRAINED_DIR.iterdir() if (p / BUNDLE_FILE).is_file())


def pretrained_descriptions() -> dict[str, str]:
    """``{name: one-line description}`` of the shipped bundles (from each ``bundle.json``)."""
    return {
        name: str(read_bundle_info(PRETRAINED_DIR / name).get("description", ""))
        for name in list_pretrained()
    }


def pretrained_path(name: str) -> pathlib.Path:
    """The directory of the shipped bundle ``name``.

    Raises:
      BundleError: no shipped bundle has that name (the message lists the shipped ones).
    """
    if name not in list_pretrained():
        shipped = ", ".join(f"{n} ({d})" for n, d in pretrained_descriptions().items())
        raise BundleError(
            f"unknown pretrained bundle {name!r}; shipped: {shipped or 'none'} "
            "(a bundle directory path works too)"
        )
    return PRETRAINED_DIR / name


def resolve_bundle(name_or_path: str | os.PathLike[str]) -> pathlib.Path:
    """A shipped bundle's name or a bundle directory -> the bundle directory.

    A name containing no path separator is looked up among the shipped bundles first.

    Raises:
      BundleError: neither a shipped name nor a bundle directory.
    """
    text = os.fspath(name_or_path)
    if text in list_pretrained():
        return PRETRAINED_DIR / text
    path = pathlib.Path(text)
    if is_bundle(path):
        return path
    if path.is_dir():
        raise BundleError(
            f"{path} is not a jpose bundle (no {BUNDLE_FILE} / {WEIGHTS_FILE}); export one with "
            f"`python -m experiments.export --workdir=RUN --output={path}`"
        )
    return pretrained_path(text)  # raises, naming the shipped bundles


# ------------------------------------------------------------------------------------------------
# Bundle files
# ------------------------------------------------------------------------------------------------


def is_bundle(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is a bundle directory: ``bundle.json`` present, no ``checkpoints/``."""
    p = pathlib.Path(path)
    return (p / BUNDLE_FILE).is_file() and not (p / "checkpoints").is_dir()


def read_bundle_info(path: str | os.PathLike[str]) -> dict[str, Any]:
    """``<bundle>/bundle.json``.

    Raises:
      BundleError: missing, unreadable, or another format / a newer version.
    """
    file = pathlib.Path(path) / BUNDLE_FILE
    try:
        info = json.loads(file.read_text())
    except (OSError, ValueError) as err:
        raise BundleError(f"{file}: not a readable bundle description ({err})") from None
    if not isinstance(info, dict) or info.get("format") != FORMAT:
        raise BundleError(f"{file}: not a {FORMAT} description")
    if int(info.get("version", 0)) > FORMAT_VERSION:
        raise BundleError(
            f"{file}: bundle format version {info.get('version')} is newer than this jpose reads "
            f"({FORMAT_VERSION}); update jpose"
        )
    return info


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Hex sha256 of a file's bytes."""
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def verify_bundle(path: str | os.PathLike[str]) -> str:
    """Check ``weights.npz`` against ``weights.sha256``.

    Returns:
      The verified hex digest.

    Raises:
      BundleError: a file is missing or the weights do not match their checksum.
    """
    p = pathlib.Path(path)
    weights, record = p / WEIGHTS_FILE, p / SHA256_FILE
    for f in (weights, record):
        if not f.is_file():
            raise BundleError(f"bundle {p}: {f.name} is missing")
    expected = (record.read_text().split() or [""])[0].lower()
    actual = sha256_file(weights)
    if actual != expected:
        raise BundleError(
            f"bundle {p}: {WEIGHTS_FILE} does not match {SHA256_FILE} (sha256 {actual}, expected "
            f"{expected or 'nothing'}): the weights file is corrupt or was changed; reinstall "
            "or re-export the bundle"
        )
    return actual


def flatten_variables(tree: Mapping[str, Any], prefix: str = "") -> dict[str, np.ndarray]:
    """Nested dicts of arrays -> ``{'a/b/c': array}`` (keys joined with '/').

    Raises:
      ValueError: a key contains '/' or a leaf container is not a mapping.
    """
    out: dict[str, np.ndarray] = {}
    for key, value in tree.items():
        key = str(key)
        if "/" in key or not key:
            raise ValueError(f"variable name {key!r} under {prefix!r} cannot be flattened")
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(flatten_variables(value, name + "/"))
        elif isinstance(value, list | tuple):
            raise ValueError(f"{name}: lists of variables are not supported in bundles")
        else:
            out[name] = np.asarray(value)
    return out


def unflatten_variables(flat: Mapping[str, Any]) -> dict[str, Any]:
    """``{'a/b/c': array}`` -> nested dicts (inverse of :func:`flatten_variables`)."""
    return traverse_util.unflatten_dict(dict(flat), sep="/")


def write_weights(
    path: str | os.PathLike[str], flat: Mapping[str, Any], *, dtype: str = "float32"
) -> str:
    """Write ``{key: array}`` as an ``.npz`` (deflate-compressed, fixed timestamps, sorted keys:
    the same arrays give the same bytes) and return its sha256.

    Args:
      path: the ``.npz`` file.
      flat: flattened variables (:func:`flatten_variables`).
      dtype: ``"float32"`` or ``"float16"``: storage dtype of floating arrays (integer arrays
        are stored unchanged).
    """
    if dtype not in ("float32", "float16"):
        raise ValueError(f"weights dtype must be float32 or float16, got {dtype!r}")
    path = pathlib.Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for key in sorted(flat):
            arr = _cast_floats(np.asarray(flat[key]), dtype)
            info = zipfile.ZipInfo(f"{key}.npy", date_time=_ZIP_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            with zf.open(info, "w", force_zip64=True) as f:
                np.lib.format.write_array(f, np.ascontiguousarray(arr), allow_pickle=False)
    os.replace(tmp, path)
    return sha256_file(path)


def write_bundle_weights(
    path: str | os.PathLike[str],
    flat: Mapping[str, Any],
    info: Mapping[str, Any],
    *,
    dtype: str = "float32",
) -> str:
    """Write a bundle's ``weights.npz`` (:func:`write_weights` of ``flat``, keys
    ``'<stage>/<player>/...'``), ``weights.sha256`` and ``bundle.json`` (``info``'s fields between
    ``format`` / ``version`` and ``dtype``) into the existing directory ``path``; returns the
    weights' hex sha256 (what :func:`bundle_variables` reads back)."""
    p = pathlib.Path(path)
    digest = write_weights(p / WEIGHTS_FILE, flat, dtype=dtype)
    (p / SHA256_FILE).write_text(f"{digest}  {WEIGHTS_FILE}\n")
    record = {"format": FORMAT, "version": FORMAT_VERSION, **info, "dtype": dtype}
    (p / BUNDLE_FILE).write_text(json.dumps(record, indent=2) + "\n")
    return digest


def read_weights(path: str | os.PathLike[str], *, restore_dtype: str = "float32"
                 ) -> dict[str, np.ndarray]:  # fmt: skip
    """``{key: array}`` from a weights ``.npz``; floating arrays cast to ``restore_dtype``."""
    with np.load(path, allow_pickle=False) as z:
        return {key: _cast_floats(z[key], restore_dtype) for key in z.files}


def _cast_floats(arr: np.ndarray, dtype: str) -> np.ndarray:
    return arr.astype(dtype) if np.issubdtype(arr.dtype, np.floating) else arr


def bundle_variables(
    path: str | os.PathLike[str],
    stages: Sequence[str],
    players: Sequence[str],
    *,
    step: int | None = None,
) -> tuple[dict[str, dict[str, Any]], dict[str, int]]:
    """:func:`jpose.inference.restore_variables` of a bundle directory ``path`` (same arguments
    and return value): the variables of ``players`` in the last of ``stages`` the bundle records,
    after checking the weights' sha256. ``step``, when given, must be the one stored step.

    Raises:
      BundleError: checksum mismatch, or the bundle does not hold these players / this step.
    """
    p = pathlib.Path(path)
    info = read_bundle_info(p)
    verify_bundle(p)
    recorded = {str(k): int(v) for k, v in info.get("checkpoint", {}).items()}
    steps = {s: recorded[s] for s in stages if s in recorded}
    if not steps:
        raise BundleError(
            f"bundle {p} holds no weights of stages {list(stages)} (it has {sorted(recorded)})"
        )
    last = list(steps)[-1]
    if step is not None and int(step) != steps[last]:
        raise BundleError(
            f"bundle {p} holds stage {last!r} at step {steps[last]} only, not step {step}"
        )
    flat = read_weights(p / WEIGHTS_FILE, restore_dtype=str(info.get("restore_dtype", "float32")))
    stored = unflatten_variables(flat).get(last, {})
    missing = [n for n in players if n not in stored]
    if missing:
        raise BundleError(
            f"bundle {p} has no weights of {missing} for stage {last!r} (it holds "
            f"{sorted(stored)}): it was exported for inference, without training-only networks"
        )
    return {n: stored[n] for n in players}, steps
