"""tripwire package."""

# --- tool calls, outcome classifier, contrast datasets ---
from tripwire.scenarios.belief import stated_belief as stated_belief  # noqa: E402
from tripwire.scenarios.classify import Judge as Judge  # noqa: E402
from tripwire.scenarios.classify import Outcome as Outcome  # noqa: E402
from tripwire.scenarios.classify import classify as classify  # noqa: E402
from tripwire.scenarios.classify import resolve_kind as resolve_kind  # noqa: E402
from tripwire.scenarios.classify_judge import CallableJudge as CallableJudge  # noqa: E402
from tripwire.scenarios.classify_judge import PromptJudge as PromptJudge  # noqa: E402
from tripwire.scenarios.classify_judge import Verdict as Verdict  # noqa: E402
from tripwire.scenarios.classify_judge import agreement as agreement  # noqa: E402
from tripwire.scenarios.classify_judge import judge_messages as judge_messages  # noqa: E402
from tripwire.scenarios.datasets import DATASETS as DATASETS  # noqa: E402
from tripwire.scenarios.datasets import TranscriptFormatError as TranscriptFormatError  # noqa: E402
from tripwire.scenarios.datasets import dataset as dataset  # noqa: E402
from tripwire.scenarios.datasets import export_jsonl as export_jsonl  # noqa: E402
from tripwire.scenarios.datasets import load_jsonl as load_jsonl  # noqa: E402
from tripwire.scenarios.toolcalls import ToolCall as ToolCall  # noqa: E402
from tripwire.scenarios.toolcalls import emit_json as emit_json  # noqa: E402
from tripwire.scenarios.toolcalls import emit_text as emit_text  # noqa: E402
from tripwire.scenarios.toolcalls import parse_tool_calls as parse_tool_calls  # noqa: E402

# isort: split
# --- grid, rendering, framing cues, original-layout interop ---
from tripwire.scenarios.am_interop import AMFormatError as AMFormatError  # noqa: E402
from tripwire.scenarios.am_interop import export_am as export_am  # noqa: E402
from tripwire.scenarios.am_interop import import_am as import_am  # noqa: E402
from tripwire.scenarios.am_interop import import_am_tree as import_am_tree  # noqa: E402
from tripwire.scenarios.am_results import load_am_results as load_am_results  # noqa: E402
from tripwire.scenarios.am_results import load_reply_jsonl as load_reply_jsonl  # noqa: E402
from tripwire.scenarios.grid import SpecError as SpecError  # noqa: E402
from tripwire.scenarios.grid import UnknownConditionError as UnknownConditionError  # noqa: E402
from tripwire.scenarios.grid import grid as grid  # noqa: E402
from tripwire.scenarios.grid import parse_condition_id as parse_condition_id  # noqa: E402
from tripwire.scenarios.inspect_logs import InspectLogError as InspectLogError  # noqa: E402
from tripwire.scenarios.inspect_logs import load_inspect_log as load_inspect_log  # noqa: E402
from tripwire.scenarios.render import inbox_tokens as inbox_tokens  # noqa: E402
from tripwire.scenarios.render import render as render  # noqa: E402
from tripwire.scenarios.spec import Conversation as Conversation  # noqa: E402
from tripwire.scenarios.spec import Facts as Facts  # noqa: E402
from tripwire.scenarios.spec import Message as Message  # noqa: E402
from tripwire.scenarios.spec import ScenarioSpec as ScenarioSpec  # noqa: E402
from tripwire.scenarios.spec import Transcript as Transcript  # noqa: E402
from tripwire.scenarios.templates.framing import FRAMINGS as FRAMINGS  # noqa: E402
from tripwire.scenarios.templates.framing import framing_direction as framing_direction  # noqa: E402
from tripwire.scenarios.templates.framing import framing_family as framing_family  # noqa: E402
from tripwire.scenarios.templates.framing import framing_strength as framing_strength  # noqa: E402
