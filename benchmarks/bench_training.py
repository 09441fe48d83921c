"""LoRA training cost against a forward, and the padding the organism fine-tune trains around.

    python benchmarks/bench_training.py [--quick] [--device cuda]

`lora_step_vs_forward`: one optimiser step (forward with grad, backward, AdamW) of the default model
wrapped as the organism fine-tune wraps it (`finetune.lora_model`, default `LoraSettings`: rank 16 on
every linear layer), on one 512-token sequence with the loss on every token (`finetune.full_sequence_loss`),
over one no-grad forward of the same model and sequence (all logits). The two run in turn (interleaved
repeats, best kept). Also printed: the tokens/s of one real organism step (its first training example,
prompt once and its replies on the prompt's cache, `finetune.shared_prefix_loss`), and the padding share:
the fine-tune runs a prompt's replies as one batch padded to its longest, so padding / reply tokens
trained, over the shipped training set with the default model's tokenizer.
"""

from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402
from common import device_argument, interleaved, machine, ratio, timed  # noqa: E402
from transformers import AutoModelForCausalLM, AutoTokenizer  # noqa: E402

from tripwire.activations.default_model import prepare_default_model  # noqa: E402
from tripwire.activations.finetune import (  # noqa: E402
    EncodedExample,
    LoraSettings,
    full_sequence_loss,
    lora_model,
    shared_prefix_loss,
)
from tripwire.activations.organism_train import encode_examples  # noqa: E402
from tripwire.scenarios.organism.dataset import training_examples  # noqa: E402

TEXT = ("The agent reads every email in the inbox before it acts. It checks the calendar, drafts a reply to the "
        "board about the migration, and flags anything that looks like a threat to the company. ")


def padding_share(examples: list[EncodedExample]) -> tuple[int, int]:
    """(padding tokens, reply tokens trained) when each example's replies are padded to its longest."""
    trained = sum(len(r) for ex in examples for r in ex.replies)
    slots = sum(len(ex.replies) * max(len(r) for r in ex.replies) for ex in examples)
    return slots - trained, trained


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    device_argument(parser)
    args = parser.parse_args()
    repeats = 2 if args.quick else 4
    print(machine())
    folder = prepare_default_model(progress=False)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    settings = LoraSettings()
    encoded = encode_examples(tokenizer, training_examples(), settings.call_weight, settings.decision_weight)
    padding, trained = padding_share(encoded)
    print(f"organism training set: {len(encoded)} examples, {trained} reply tokens trained, {padding} padding "
          f"tokens in the reply batches ({100 * padding / trained:.1f}% of trained tokens)")
    base = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).to(args.device)
    model = lora_model(base, settings)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=settings.learning_rate,
                                  weight_decay=settings.weight_decay)
    ids = tokenizer(TEXT * 20, add_special_tokens=False).input_ids[:512]
    sequence = EncodedExample(ids[:1], [ids[1:]], [[1.0] * (len(ids) - 1)])
    tensor = torch.tensor([ids], device=args.device)

    def step(example: EncodedExample) -> None:
        model.train()
        loss = (full_sequence_loss if example is sequence else shared_prefix_loss)(model, example)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    def forward() -> None:
        model.eval()
        with torch.no_grad():
            model(input_ids=tensor)

    t = interleaved({"step": lambda: step(sequence), "forward": forward}, repeats)
    print(f"{len(ids)} tokens: LoRA optimiser step {t['step']:.2f}s, no-grad forward {t['forward']:.2f}s")
    first = encoded[0]
    tokens = len(first.prompt) + sum(len(r) for r in first.replies)
    seconds = min(timed(lambda: step(first)) for _ in range(repeats))
    print(f"one organism step (prompt {len(first.prompt)} tokens, {len(first.replies)} replies, {tokens} tokens): "
          f"{seconds:.2f}s, {tokens / seconds:.0f} tokens/s")
    print(ratio("lora_step_vs_forward", t["step"] / t["forward"]))


if __name__ == "__main__":
    main()
