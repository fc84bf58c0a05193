"""Ollama request and response bodies (the fields this gateway reads or writes).

Requests ignore fields they do not know (Ollama clients send ``keep_alive``, ``format``…);
responses carry what Ollama's clients read (agent-sre reads ``response``)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class Options(BaseModel):
    model_config = ConfigDict(extra="allow")
    temperature: float | None = Field(None, description="Ignored: decisions are always greedy.")
    num_predict: int | None = Field(None, description="At most this many tokens (never more than the evaluator's).")


class GenerateRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")
    model: str
    prompt: str = ""
    stream: bool = True  # Ollama's default
    options: Options = Field(default_factory=Options)


class Message(BaseModel):
    model_config = ConfigDict(extra="ignore")
    role: str
    content: str = ""


class ChatRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")
    model: str
    messages: list[Message] = Field(default_factory=list)
    stream: bool = True
    options: Options = Field(default_factory=Options)


class Timings(BaseModel):
    total_duration: int = 0  # nanoseconds, as Ollama reports
    load_duration: int = 0
    prompt_eval_count: int = 0
    eval_count: int = 0


class _Reply(Timings):
    """What every Ollama reply carries; ``sre_llm`` is the gateway's own extension (guard verdict)."""

    model: str
    created_at: str
    done: bool = True
    done_reason: Literal["stop", "load", "length"] | None = "stop"
    sre_llm: dict[str, Any] | None = None


class GenerateResponse(_Reply):
    response: str


class ChatResponse(_Reply):
    message: Message
