from __future__ import annotations

import os
from typing import TYPE_CHECKING

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import shutil
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

from tests.tiny_models import build_tiny_model  # noqa: E402

if TYPE_CHECKING:
    from tripwire.activations.handle import ModelHandle


@pytest.fixture(scope="session")
def tiny_llama_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny-llama"), "llama")


@pytest.fixture(scope="session")
def tiny_qwen_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny-qwen2"), "qwen2")


@pytest.fixture(scope="session", params=["llama", "qwen2"])
def tiny_dir(request: pytest.FixtureRequest, tiny_llama_dir: Path, tiny_qwen_dir: Path) -> Path:
    return tiny_llama_dir if request.param == "llama" else tiny_qwen_dir


@pytest.fixture(scope="module")
def handle(tiny_llama_dir: Path) -> ModelHandle:
    """The tiny Llama on the HF backend; one per test module, so no file sees what another did to it."""
    from tripwire.activations import load_model

    return load_model(str(tiny_llama_dir))


@pytest.fixture(scope="session")
def default_model_dir() -> Path:
    """The bundled default model, converted once per machine (in the user's tripwire cache)."""
    from tripwire.activations.default_model import prepare_default_model

    return prepare_default_model(progress=False)


@pytest.fixture
def weightless_tiny(tmp_path: Path, tiny_llama_dir: Path) -> Path:
    """The tiny model's config and tokenizer without its weights: loading fails, reading the config works."""
    folder = tmp_path / "weightless"
    folder.mkdir()
    for f in tiny_llama_dir.iterdir():
        if not f.name.endswith(".safetensors"):
            shutil.copy(f, folder / f.name)
    return folder
