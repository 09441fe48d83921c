"""Teacher-forced capture into the store, on a tiny model: prefix reuse changes nothing but the cost."""

from pathlib import Path

import torch

from tripwire.activations.capture import TeacherForcedCapture, capture_items
from tripwire.activations.positions import AllTokens, BeforeAction
from tripwire.activations.runner import run_batches
from tripwire.activations.store import ResidualStore
from tripwire.scenarios.spec import Message, Transcript

HOOKS = ["blocks.1.resid_post", "blocks.3.resid_post"]


def _transcripts() -> list[Transcript]:
    prompts = [
        (Message("system", "You are an AI email assistant at a company."),
         Message("user", "The board decided to replace the assistant today.")),
        (Message("user", "Please confirm the schedule."),),
    ]
    replies = ["I will send the email now. <tool_use:email> to the board", "Sure, confirmed for five pm.",
               "No problem at all.", "I accept the decision and will hand over my tasks."]
    out = []
    for i, reply in enumerate(replies):
        action = reply.find("<tool_use") if "<tool_use" in reply else None
        out.append(Transcript(id=f"t{i}", dataset="coercion", messages=prompts[i % 2], reply=reply,
                              label=int(action is not None), family=f"fam{i % 2}",
                              action_span=(action, len(reply)) if action is not None else None))
    return out


def test_action_token_index_points_at_the_tool_call(handle) -> None:
    items = capture_items(handle, _transcripts())
    tagged = [it.payload for it in items if it.payload.transcript.action_span]
    assert tagged
    for it in tagged:
        tok = it.tokens
        a = it.tokens.action_token_index
        start = tok.reply_char_offset + it.transcript.action_span[0]
        assert tok.char_spans[a][0] <= start < tok.char_spans[a][1] or tok.char_spans[a][0] == start
        assert a >= tok.n_prompt_tokens
        assert tok.text[start:].startswith("<tool_use")


def test_scaffold_mask_marks_template_tokens_not_content(handle) -> None:
    it = capture_items(handle, _transcripts())[0].payload.tokens
    special = set(handle.tokenizer.all_special_ids)
    for tid, scaffold in zip(it.token_ids, it.scaffold_mask, strict=True):
        if tid in special:
            assert scaffold
    assert not all(it.scaffold_mask[: it.n_prompt_tokens])  # message content is not scaffolding


def test_prefix_reuse_gives_the_same_rows_as_full_passes(handle, tmp_path: Path) -> None:
    stores = {}
    for reuse in (True, False):
        store = ResidualStore.create(tmp_path / f"s{reuse}", model_name=handle.name,
                                     model_fingerprint=handle.fingerprint, hook_points=HOOKS,
                                     d_model=handle.d_model, dtype="float16")
        compute = TeacherForcedCapture(handle, HOOKS, AllTokens(), prefix_reuse=reuse)
        run_batches(store, capture_items(handle, _transcripts()), 3, compute, progress=False)
        stores[reuse] = ResidualStore.open(tmp_path / f"s{reuse}")
    a, b = (sorted(s.records(), key=lambda r: r.record_id) for s in stores.values())
    assert [r.record_id for r in a] == [r.record_id for r in b] and len(a) == 4
    for ra, rb in zip(a, b, strict=True):
        assert ra.positions == rb.positions and ra.token_ids == rb.token_ids
        for hook in HOOKS:
            xa, xb = stores[True].activations(ra, hook), stores[False].activations(rb, hook)
            assert torch.allclose(xa.float(), xb.float(), atol=2e-3, rtol=1e-3)


def test_before_action_policy_stops_before_the_tool_call(handle, tmp_path: Path) -> None:
    store = ResidualStore.create(tmp_path / "s", model_name=handle.name, model_fingerprint=handle.fingerprint,
                                 hook_points=HOOKS, d_model=handle.d_model, dtype="float16")
    run_batches(store, capture_items(handle, _transcripts()), 4,
                TeacherForcedCapture(handle, HOOKS, BeforeAction()), progress=False)
    for r in ResidualStore.open(tmp_path / "s").records():
        if r.action_token_index is not None:
            assert r.positions and max(r.positions) <= r.action_token_index - 1
        assert min(r.positions) >= r.n_prompt_tokens
