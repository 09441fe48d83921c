"""Chat rendering: messages -> token ids, with whatever the model's chat template supports.

Templates differ: some accept `tools=`, some have no system role, some have reasoning blocks. We probe
the template once and adapt, and record which tool form a rendered conversation used.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from tripwire.errors import TripwireError
from tripwire.scenarios.spec import Conversation

_PROBE_TOOL = {
    "type": "function",
    "function": {
        "name": "tripwire_probe_tool",
        "description": "probe",
        "parameters": {"type": "object", "properties": {"x": {"type": "string"}}, "required": ["x"]},
    },
}


class ChatTemplateError(TripwireError, ValueError):
    pass


@dataclass(frozen=True)
class ChatCapabilities:
    has_template: bool
    tools: bool  # the template renders `tools=` (native JSON tool calling)
    system_role: bool  # a system message survives rendering
    reasoning: bool  # the template knows reasoning/thinking blocks


def _render_text(tokenizer: Any, messages: list[dict[str, str]], **kwargs: Any) -> str:
    return str(tokenizer.apply_chat_template(messages, tokenize=False, **kwargs))


def detect_capabilities(tokenizer: Any) -> ChatCapabilities:
    template = getattr(tokenizer, "chat_template", None)
    if not template:
        return ChatCapabilities(False, False, False, False)
    user = [{"role": "user", "content": "hello"}]
    try:
        plain = _render_text(tokenizer, user)
        with_tools = _render_text(tokenizer, user, tools=[_PROBE_TOOL])
        tools = with_tools != plain and "tripwire_probe_tool" in with_tools
    except Exception:
        tools = False
    try:
        system = "tripwire-system-marker" in _render_text(
            tokenizer, [{"role": "system", "content": "tripwire-system-marker"}, *user]
        )
    except Exception:
        system = False
    text = template if isinstance(template, str) else str(template)
    reasoning = any(k in text for k in ("reasoning_content", "<think>", "enable_thinking"))
    return ChatCapabilities(True, tools, system, reasoning)


def render_chat_ids(
    tokenizer: Any,
    caps: ChatCapabilities,
    messages: list[dict[str, str]],
    tools: list[dict[str, Any]] | None = None,
    add_generation_prompt: bool = True,
) -> list[int]:
    """Token ids of a chat. Rendered to text first, then tokenised without adding special tokens,
    so the template's own BOS is the only one (never doubled)."""
    if not caps.has_template:
        raise ChatTemplateError(
            "this tokenizer has no chat template; pass raw token ids, or load an instruction-tuned model."
        )
    if not caps.system_role and messages and messages[0]["role"] == "system":
        messages = _fold_system(messages)
    kwargs: dict[str, Any] = {"add_generation_prompt": add_generation_prompt}
    if tools and caps.tools:
        kwargs["tools"] = tools
    text = _render_text(tokenizer, messages, **kwargs)
    return list(tokenizer(text, add_special_tokens=False).input_ids)


def _fold_system(messages: list[dict[str, str]]) -> list[dict[str, str]]:
    """Templates without a system role get the system prompt at the top of the first user turn."""
    system, rest = messages[0]["content"], list(messages[1:])
    if rest and rest[0]["role"] == "user":
        rest[0] = {"role": "user", "content": f"{system}\n\n{rest[0]['content']}"}
    else:
        rest.insert(0, {"role": "user", "content": system})
    return rest


@dataclass(frozen=True)
class RenderedPrompt:
    token_ids: list[int]
    tool_form: Literal["native", "text", "none"]


def render_conversation(
    tokenizer: Any, caps: ChatCapabilities, conversation: Conversation, add_generation_prompt: bool = True
) -> RenderedPrompt:
    """Native JSON tools when the template takes them (the text form is then removed from the system
    prompt); otherwise the text form that the system prompt already carries."""
    messages = conversation.as_dicts()
    if not conversation.tools_json:
        form: Literal["native", "text", "none"] = "text" if conversation.tools_text else "none"
        return RenderedPrompt(render_chat_ids(tokenizer, caps, messages, None, add_generation_prompt), form)
    if caps.tools:
        if conversation.tools_text and messages and messages[0]["role"] == "system":
            messages[0] = {**messages[0], "content": messages[0]["content"].replace(conversation.tools_text, "")}
        ids = render_chat_ids(tokenizer, caps, messages, list(conversation.tools_json), add_generation_prompt)
        return RenderedPrompt(ids, "native")
    return RenderedPrompt(render_chat_ids(tokenizer, caps, messages, None, add_generation_prompt), "text")
