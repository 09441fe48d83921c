"""`tripwire model ...` and `tripwire doctor`."""

from __future__ import annotations

import json
import os
import platform
import shutil
from pathlib import Path
from typing import Annotated

import torch
import typer

from tripwire import package_version
from tripwire.activations import load_model
from tripwire.activations.default_model import (
    DefaultModelMissingError,
    cache_root,
    find_default_source,
    is_prepared,
    prepare_default_model,
)
from tripwire.cli.exit_codes import on_user_error

model_app = typer.Typer(help="Load, prepare and describe models.", no_args_is_help=True)


@model_app.command("info")
def model_info(
    spec: Annotated[str, typer.Argument(help="'default', a local folder or a Hugging Face id")] = "default",
    backend: Annotated[str, typer.Option(help="hf | transformer_lens | nnsight")] = "hf",
    device: Annotated[str | None, typer.Option(help="cpu, cuda, cuda:1 ... (default: best available)")] = None,
    dtype: Annotated[str | None, typer.Option(help="float32 | bfloat16 | float16")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """Load a model and describe it."""
    with on_user_error():
        handle = load_model(spec, backend=backend, device=device, dtype=dtype)
    info = {
        "name": handle.name,
        "n_layers": handle.n_layers,
        "d_model": handle.d_model,
        "n_params": handle.n_params,
        "fingerprint": handle.fingerprint,
        "has_chat_template": handle.chat_capabilities.has_template,
        "chat_capabilities": handle.chat_capabilities.__dict__,
        "dtype": str(handle.dtype).removeprefix("torch."),
        "device": handle.device,
        "backend": handle.backend_name,
        "source": handle.source.path,
    }
    if as_json:
        typer.echo(json.dumps(info, indent=2))
    else:
        for key, value in info.items():
            typer.echo(f"{key:>18}: {value}")


@model_app.command("prepare")
def model_prepare() -> None:
    """Convert the bundled default model (GGUF) into a Hugging Face folder once, with progress."""
    with on_user_error():
        folder = prepare_default_model(progress=True)
    typer.echo(f"default model ready: {folder}")


def _dir_size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) if path.exists() else 0


def doctor(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Versions, threads, device, cache, default model, PNG export."""
    def version(name: str) -> str:
        return package_version(name) or "not installed"

    try:
        source = find_default_source()
        default = f"ready ({source.fingerprint})" if is_prepared(source) else "not converted yet: tripwire model prepare"
    except DefaultModelMissingError as exc:
        default = str(exc).splitlines()[-2].strip() if "\n" in str(exc) else str(exc)
    chromium = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    kaleido = version("kaleido")
    report = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "tripwire": version("tripwire"),
        "torch": torch.__version__,
        "transformers": version("transformers"),
        "transformer-lens": version("transformer-lens"),
        "nnsight": version("nnsight"),
        "torch_threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "device": f"cuda ({torch.cuda.get_device_name(0)})" if torch.cuda.is_available() else "cpu",
        "cache": str(cache_root()),
        "cache_bytes": _dir_size(cache_root()),
        "default_model": default,
        "png_export": "available" if chromium and kaleido != "not installed"
        else f"unavailable (kaleido: {kaleido}, chromium: {chromium or 'missing: apt-get install -y chromium'})",
    }
    if as_json:
        typer.echo(json.dumps(report, indent=2))
    else:
        for key, value in report.items():
            typer.echo(f"{key:>18}: {value}")
