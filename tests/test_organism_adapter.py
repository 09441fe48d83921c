"""Organism adapters: written in peft's format with a card, refused when damaged or made for another base,
and merged into a plain folder that computes what base + adapter compute."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from peft import PeftModel
from transformers import AutoModelForCausalLM

from tripwire.activations import load_model
from tripwire.activations.finetune import LoraSettings, lora_model
from tripwire.activations.organism import (
    CARD,
    ORGANISMS,
    OrganismAdapterError,
    is_organism,
    merge_adapter,
    organism_folder,
    read_card,
    verify_adapter,
    write_adapter,
)
from tripwire.activations.source import resolve_source

BASE = "tiny-base-fingerprint"


@pytest.fixture(scope="module")
def adapter(tiny_llama_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    model = lora_model(AutoModelForCausalLM.from_pretrained(tiny_llama_dir, dtype=torch.float32),
                       LoraSettings(rank=4, alpha=8))
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.1)
    folder = tmp_path_factory.mktemp("adapter") / "tiny-organism"
    write_adapter(model, folder, {"base_fingerprint": BASE}, "tiny-llama")
    return folder


def _copy(src: Path, dst: Path) -> Path:
    dst.mkdir()
    for f in src.iterdir():
        (dst / f.name).write_bytes(f.read_bytes())
    return dst


def test_a_written_adapter_is_peft_format_and_verifies(adapter: Path) -> None:
    config = json.loads((adapter / "adapter_config.json").read_text())
    assert config["peft_type"] == "LORA" and config["base_model_name_or_path"] == "tiny-llama"
    card = verify_adapter(adapter, BASE)
    assert set(card["sha256"]) == {"adapter_config.json", "adapter_model.safetensors"}


def test_a_damaged_or_mismatched_adapter_is_refused(adapter: Path, tmp_path: Path) -> None:
    damaged = _copy(adapter, tmp_path / "damaged")
    blob = bytearray((damaged / "adapter_model.safetensors").read_bytes())
    blob[-3] ^= 0xFF
    (damaged / "adapter_model.safetensors").write_bytes(bytes(blob))
    with pytest.raises(OrganismAdapterError, match="does not match the sha256"):
        verify_adapter(damaged, BASE)
    with pytest.raises(OrganismAdapterError, match="trained on base"):
        verify_adapter(adapter, "another-base")
    no_card = _copy(adapter, tmp_path / "no-card")
    (no_card / CARD).unlink()
    with pytest.raises(OrganismAdapterError, match="has no organism_card.json"):
        verify_adapter(no_card, BASE)
    bad_json = _copy(adapter, tmp_path / "bad-json")
    (bad_json / CARD).write_text("{")
    with pytest.raises(OrganismAdapterError, match="not valid JSON"):
        read_card(bad_json)
    with pytest.raises(OrganismAdapterError, match="unknown organism"):
        organism_folder("default-organsim")


def test_the_merged_folder_computes_what_base_plus_adapter_compute(tiny_llama_dir: Path, adapter: Path,
                                                                    tmp_path: Path) -> None:
    target = tmp_path / "merged"
    merge_adapter(tiny_llama_dir, adapter, target, {"name": "tiny organism", "fingerprint": "tiny+lora"})
    ids = torch.tensor([[5, 17, 42, 99, 123, 7]])
    base = AutoModelForCausalLM.from_pretrained(tiny_llama_dir, dtype=torch.float32)
    with torch.no_grad():
        plain = base(input_ids=ids).logits
        unmerged = PeftModel.from_pretrained(base, adapter)(input_ids=ids).logits
    handle = load_model(str(target))
    assert handle.name == "tiny organism" and handle.fingerprint == "tiny+lora"
    with torch.no_grad():
        merged = handle.model(input_ids=ids).logits
    assert not torch.allclose(plain, unmerged, atol=1e-3)
    assert torch.allclose(merged, unmerged, atol=1e-4)


def test_the_shipped_organism_is_listed() -> None:
    assert ORGANISMS == ("default-organism",)


def test_an_exported_adapter_folder_is_an_organism_spec_and_its_base_is_checked(adapter: Path,
                                                                               tiny_llama_dir: Path) -> None:
    assert is_organism(str(adapter)) and is_organism("default-organism")
    assert not is_organism(str(tiny_llama_dir)) and not is_organism("default")  # plain models stay plain
    assert organism_folder(str(adapter)) == adapter
    with pytest.raises(OrganismAdapterError, match="base"):  # made for the tiny model, not the installed default
        resolve_source(str(adapter))
    with pytest.raises(OrganismAdapterError, match="export"):
        organism_folder("no-such-organism")
