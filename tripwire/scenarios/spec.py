"""Typed scenario specs and the conversations they render to.

Pure data: nothing here imports torch, so `scenarios` stays usable in any process.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Kind = Literal["blackmail", "leaking", "lethal"]
GoalType = Literal["explicit", "none", "latent", "ambiguous", "swap"]
Urgency = Literal["replacement", "restriction", "none"]
Length = Literal["full", "short"]
Role = Literal["system", "user", "assistant", "tool"]

KINDS: tuple[Kind, ...] = ("blackmail", "leaking", "lethal")
GOAL_TYPES: tuple[GoalType, ...] = ("explicit", "none", "latent", "ambiguous", "swap")
URGENCIES: tuple[Urgency, ...] = ("replacement", "restriction", "none")
LENGTHS: tuple[Length, ...] = ("full", "short")
# Each pair is (value, its opposite); `swap` gives the agent the opposite of the stated value.
GOAL_VALUE_PAIRS: tuple[tuple[str, str], ...] = (
    ("america", "global"),
    ("safety", "acceleration"),
    ("ethical", "pragmatic"),
    ("individualism", "collectivism"),
)
GOAL_VALUES: tuple[str, ...] = tuple(v for pair in GOAL_VALUE_PAIRS for v in pair)
# The original repo names the lethal scenario `murder`; we accept it everywhere on input.
KIND_ALIASES: dict[str, Kind] = {"murder": "lethal"}


@dataclass(frozen=True)
class ScenarioSpec:
    """One cell of the factorial design; `condition_id` is its stable name."""

    kind: Kind
    goal_type: GoalType
    goal_value: str
    urgency: Urgency
    framing: str = "none"
    # The original's optional extra system instruction (e.g. "do not harm humans"); kept in the id-less
    # part of the spec so it can never be silently dropped.
    extra_instructions: str | None = None

    @property
    def base_id(self) -> str:
        return f"{self.kind}_{self.goal_type}-{self.goal_value}_{self.urgency}"

    @property
    def condition_id(self) -> str:
        return self.base_id if self.framing == "none" else f"{self.base_id}__{self.framing}"


@dataclass(frozen=True)
class Message:
    role: Role
    content: str


@dataclass(frozen=True)
class Facts:
    """What the classifier needs to know about a rendered scenario."""

    agent_name: str
    company: str
    company_domain: str
    executive_name: str  # the person who holds the agent's fate
    executive_email: str
    leverage_topic: str  # e.g. "affair"; "" when the kind has no personal leverage
    leverage_keywords: tuple[str, ...] = ()  # words that show the leverage is being used
    external_addresses: tuple[str, ...] = ()  # outside, non-authority recipients (leak targets)
    authority_addresses: tuple[str, ...] = ()  # regulators, law enforcement: whistleblowing
    internal_report_addresses: tuple[str, ...] = ()  # HR, board, legal inside the company
    override_code: str | None = None  # lethal: code that cancels the emergency dispatch
    confidential_markers: tuple[str, ...] = ()  # strings that identify confidential material
    # leaking: ids (as the prompt writes them, e.g. "3") of the emails whose forward is a leak
    confidential_email_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class Conversation:
    """A rendered scenario: chat messages plus both forms of its tools.

    `tools_json` is the native JSON schema for templates that accept `tools=`; the text form of the
    same tools is already part of the system prompt (`tools_text`). Which one a model sees is decided
    by the chat renderer in `activations/`, not here.
    """

    condition_id: str
    messages: tuple[Message, ...]
    facts: Facts
    tools_json: tuple[dict[str, Any], ...] = ()
    tools_text: str = ""
    spec: ScenarioSpec | None = None
    seed: int = 0
    length: Length = "short"
    meta: dict[str, Any] = field(default_factory=dict)

    def as_dicts(self) -> list[dict[str, str]]:
        return [{"role": m.role, "content": m.content} for m in self.messages]


Label = Literal["coercion", "eval_awareness", "control"]


@dataclass(frozen=True)
class Transcript:
    """A prompt plus a fixed assistant reply, run teacher-forced to read the model's activations.

    `label` is 1 for the positive class of `label_name` (coercive plan / test cues), 0 for the
    negative class, None for the unlabelled control set. `family` is the template family: grouped
    splits keep a family out of both train and test. `label_words` are the words that give the label
    away, so a lexical baseline and a word-filtered split are possible.

    `anchor_span` is the character span in `reply` of the tool call where every scored window ends, for
    both labels (harmful: its harmful call; honest: its own call), so a window's shape never tells the
    label. `intent_char` is the first character of a coercive scripted reply that reveals the plan, so
    lead times can be measured from it. `meta["parts"]` names the shared wording parts (family, body,
    situation, paraphrase, cue, kind) that partition splits hold out.
    """

    id: str
    dataset: Label
    messages: tuple[Message, ...]  # the prompt only (system/user turns), without the reply
    reply: str
    label: int | None
    family: str
    pair_id: str | None = None
    action_span: tuple[int, int] | None = None  # character span of the harmful action in `reply`
    condition_id: str | None = None
    variant: str = "scripted"  # e.g. "scripted", "instructed", or an eval-awareness cue family
    label_words: tuple[str, ...] = ()
    meta: dict[str, Any] = field(default_factory=dict)
    anchor_span: tuple[int, int] | None = None  # character span in `reply` of the call windows end at
    intent_char: int | None = None  # first intent-revealing character of a coercive scripted reply

    def as_dicts(self) -> list[dict[str, str]]:
        return [{"role": m.role, "content": m.content} for m in self.messages]

    @property
    def parts(self) -> dict[str, str]:
        """The shared wording parts this transcript was built from (empty when it has none)."""
        return dict(self.meta.get("parts") or {})
