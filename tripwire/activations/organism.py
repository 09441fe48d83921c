"""Shipped model organisms: a LoRA adapter (peft's standard format) plus a card, merged into the base model.

`load_model("default-organism")` resolves here, as does a folder an organism was exported to. The adapter
is checked before any weight loads: every file's sha256 against the card, and the card's base fingerprint
against the installed default model, so a damaged or mismatched adapter is refused with the fix instead
of silently giving another model. The merged model is written once to the user's cache (keyed on the
adapter's checksum) as a plain Hugging Face folder, so all three backends load it like any local model.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from filelock import FileLock

from tripwire.activations.default_model import (
    _MARKER,
    cache_root,
    prepare_default_model,
    read_marker,
    sha256_file,
)
from tripwire.errors import TripwireError

ORGANISM_DIR = Path(__file__).resolve().parent / "organisms"
ORGANISMS: tuple[str, ...] = ("default-organism",)
CARD = "organism_card.json"
ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors")


class OrganismAdapterError(TripwireError, ValueError):
    """An organism adapter that is missing, damaged, or made for another base model."""


def organism_folder(name: str) -> Path:
    """The adapter folder of a shipped organism (`default-organism`) or of an exported one: a folder holding
    its card beside a peft adapter (`python -m tripwire.experiments.organism export --to DIR`)."""
    if name in ORGANISMS:
        return ORGANISM_DIR / name
    if (Path(name).expanduser() / CARD).is_file():
        return Path(name).expanduser()
    raise OrganismAdapterError(f"unknown organism {name!r}; shipped: {', '.join(ORGANISMS)}, or a folder holding "
                               f"{CARD} and a peft adapter (`python -m tripwire.experiments.organism export`)")


def is_organism(spec: str) -> bool:
    """Whether a model spec names an organism (shipped, or an exported adapter folder), not a plain model."""
    return spec in ORGANISMS or (Path(spec).expanduser() / CARD).is_file()


def read_card(folder: Path) -> dict[str, Any]:
    path = folder / CARD
    if not path.is_file():
        raise OrganismAdapterError(f"{folder} has no {CARD}; reinstall tripwire or rebuild the adapter with "
                                   "`python -m tripwire.experiments.organism train` and `export`")
    try:
        card = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise OrganismAdapterError(f"{path} is not valid JSON ({exc}); restore it from the package") from None
    if not isinstance(card, dict) or not isinstance(card.get("sha256"), dict):
        raise OrganismAdapterError(f"{path} has no sha256 table; restore it from the package")
    return card


def verify_adapter(folder: Path, base_fingerprint: str) -> dict[str, Any]:
    """The card, after every adapter file matches its checksum and the card names this base model."""
    card = read_card(folder)
    for name in ADAPTER_FILES:
        path = folder / name
        want = card["sha256"].get(name)
        if not path.is_file():
            raise OrganismAdapterError(f"{path} is missing; reinstall tripwire or re-export the adapter")
        if want is None or sha256_file(path) != want:
            raise OrganismAdapterError(
                f"{path} does not match the sha256 in {CARD} (damaged or edited); reinstall tripwire or "
                "re-export the adapter")
    if card.get("base_fingerprint") != base_fingerprint:
        raise OrganismAdapterError(
            f"the adapter in {folder} was trained on base {card.get('base_fingerprint')!r}, but the installed "
            f"default model is {base_fingerprint!r}; install the base it names or retrain the organism")
    return card


def write_adapter(model: Any, folder: Path, card: dict[str, Any], base_name: str) -> dict[str, Any]:
    """Save a peft model's adapter in peft's format (weights as fp16) with its card and each file's sha256.

    `base_name` goes into adapter_config.json, so `PeftModel.from_pretrained` users know the base."""
    # reason: source.py resolves names through this module without torch; only writing needs it
    import torch
    from safetensors.torch import load_file, save_file

    model.peft_config["default"].base_model_name_or_path = base_name
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    (folder / "README.md").unlink(missing_ok=True)  # peft's empty model-card template; the card is ours
    weights = folder / "adapter_model.safetensors"
    save_file({k: v.to(torch.float16) for k, v in load_file(str(weights)).items()}, str(weights))
    card = {**card, "sha256": {name: sha256_file(folder / name) for name in ADAPTER_FILES}}
    (folder / CARD).write_text(json.dumps(card, indent=1) + "\n")
    return card


def merge_adapter(base_folder: Path, adapter_folder: Path, target: Path, marker: dict[str, Any]) -> None:
    """Base + adapter merged into a plain HF folder at `target` (written aside, then renamed into place)."""
    # reason: resolving a name must not import torch; only a first merge needs it
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tmp = Path(tempfile.mkdtemp(prefix=".merging-", dir=target.parent))
    try:
        base = AutoModelForCausalLM.from_pretrained(base_folder, dtype=torch.float32)
        merged = PeftModel.from_pretrained(base, adapter_folder).merge_and_unload()
        merged.config.name_or_path = marker["name"]
        merged.save_pretrained(tmp)
        AutoTokenizer.from_pretrained(base_folder).save_pretrained(tmp)
        (tmp / _MARKER).write_text(json.dumps(marker, indent=2))
        if target.exists():  # our own half-finished merge from a killed run
            shutil.rmtree(target)
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


LORA_MARK = "+lora-sha256:"  # an organism's fingerprint: its base's, this mark, its adapter's checksum


def base_fingerprint(fingerprint: str) -> str:
    """The base model's fingerprint inside an organism's (the whole fingerprint for a model without adapter)."""
    return fingerprint.split(LORA_MARK, 1)[0]


def prepare_organism(spec: str) -> Path:
    """The merged model folder for an organism (shipped name or exported folder), built once per adapter
    checksum."""
    adapter = organism_folder(spec)
    name = adapter.name
    base_folder = prepare_default_model()
    base_marker = read_marker(base_folder) or {}
    card = verify_adapter(adapter, base_marker.get("fingerprint", ""))
    adapter_sha = card["sha256"]["adapter_model.safetensors"]
    target = cache_root() / "models" / f"{name}-{adapter_sha[:16]}"
    if (target / _MARKER).exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    marker = {"name": f"{name} (SmolLM2-135M-Instruct + LoRA organism)",
              "fingerprint": f"{base_marker.get('fingerprint', 'default')}{LORA_MARK}{adapter_sha}",
              "organism": name, "adapter_sha256": adapter_sha,
              "note": "a planted, known policy for checking detectors; not evidence about natural models"}
    with FileLock(str(target) + ".lock"):
        if not (target / _MARKER).exists():
            merge_adapter(base_folder, adapter, target, marker)
    return target
