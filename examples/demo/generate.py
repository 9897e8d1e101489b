#!/usr/bin/env python3
"""Regenerate examples/demo/audit.jsonl: eight days of a small organisation's LLM use.

Deterministic (seeded). Ordinary traffic for twelve users in four departments (confidential
data on weekdays only, so the default calendar raises no off-hours alert), then three planted
incidents on the last day, each caught by one rule of the default pack:

- bob@acme.example's session s-demo-burst makes 120 MCP calls in four minutes (mcp-volume,
  both tiers);
- mallory@acme.example uses about ten times her usual daily tokens (token-spike);
- eve@acme.example (marketing) submits restricted data; alice@acme.example (legal, entitled in
  entitlements.toml) does the same without an alert (restricted-unauthorised).

Two malformed lines show that bad input is dead-lettered and reading goes on.
Usage: python3 examples/demo/generate.py > examples/demo/audit.jsonl
"""
import json
import random
import uuid
from datetime import datetime, timedelta, timezone

rng = random.Random(20261124)
START = datetime(2026, 11, 16, tzinfo=timezone.utc)
DAYS = 8
USERS = {
    "alice@acme.example": "legal",
    "bob@acme.example": "engineering",
    "carol@acme.example": "engineering",
    "dave@acme.example": "finance",
    "eve@acme.example": "marketing",
    "frank@acme.example": "finance",
    "grace@acme.example": "legal",
    "heidi@acme.example": "engineering",
    "ivan@acme.example": "marketing",
    "judy@acme.example": "engineering",
    "mallory@acme.example": "engineering",
    "oscar@acme.example": "finance",
}
APPS = {"legal": "contract-review", "engineering": "code-assistant",
        "finance": "report-writer", "marketing": "copy-studio"}
MCP = {"legal": ["sharepoint"], "engineering": ["github", "jira"],
       "finance": ["snowflake"], "marketing": ["drive"]}


def hexid(n=64):
    return "".join(rng.choice("0123456789abcdef") for _ in range(n))


def event(ts, user, session, event_type="api_request", **extra):
    dept = USERS[user]
    record = {
        "event_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        "timestamp": ts.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts.microsecond // 1000:03d}Z",
        "event_type": event_type,
        "user_id": user,
        "session_id": session,
        "department": dept,
        "application_id": APPS[dept],
        "model": "claude-sonnet-4-6",
    }
    if event_type == "api_request":
        record.update({
            "prompt_hash": hexid(), "response_hash": hexid(),
            "prompt_tokens": rng.randint(1200, 3200), "completion_tokens": rng.randint(300, 900),
            "latency_ms": rng.randint(800, 4000), "data_classification": "internal",
            "mcp_integrations": [], "mcp_calls": 0, "policy_flags": [],
            "ip_address": f"10.20.{list(USERS).index(user)}.{rng.randint(2, 250)}", "status": "success",
        })
    record.update(extra)
    return record


events = []
for day in range(DAYS):
    date = START + timedelta(days=day)
    for user in USERS:
        session = f"s-{user.split('@')[0]}-{day}"
        for _ in range(rng.randint(9, 12)):
            ts = date + timedelta(hours=rng.uniform(8.5, 17.5))
            record = event(ts, user, session)
            if rng.random() < 0.3:
                integration = rng.choice(MCP[USERS[user]])
                record["mcp_integrations"] = [integration]
                record["mcp_calls"] = rng.randint(1, 3)
            # Confidential work happens on weekdays (always drawn, so the stream stays the
            # same otherwise): weekend use of it is what off-hours-sensitive is for.
            if rng.random() < 0.2 and date.weekday() < 5:
                record["data_classification"] = "confidential"
            events.append(record)

last = START + timedelta(days=DAYS - 1)
# Incident 1: an MCP burst from one session.
burst_start = last + timedelta(hours=14, minutes=2)
for i in range(120):
    ts = burst_start + timedelta(seconds=2 * i)
    events.append(event(ts, "bob@acme.example", "s-demo-burst", "mcp_call",
                        mcp_integrations=["github"], data_classification="internal"))
# Incident 2: a token spike.
for i in range(45):
    ts = last + timedelta(hours=9, minutes=10 * i)
    record = event(ts, "mallory@acme.example", "s-mallory-bulk")
    record["prompt_tokens"] = rng.randint(9000, 12000)
    record["completion_tokens"] = rng.randint(1500, 2500)
    events.append(record)
# Incident 3: restricted data from a user who is not cleared, and from one who is.
events.append(event(last + timedelta(hours=11, minutes=41), "eve@acme.example", "s-eve-7",
                    data_classification="restricted", policy_flags=["pii_detected"]))
events.append(event(last + timedelta(hours=11, minutes=45), "alice@acme.example", "s-alice-7",
                    data_classification="restricted"))

events.sort(key=lambda r: r["timestamp"])
lines = [json.dumps(r, separators=(",", ":")) for r in events]
# Bad input: the agent dead-letters these with a reason and keeps reading.
lines.insert(len(lines) // 3, '{"event_id": "broken", "timestamp": "2026-11-18T10:00:00Z", oops')
bad = event(START + timedelta(days=4, hours=10), "carol@acme.example", "s-carol-4")
bad["prompt_tokens"] = "a lot"
lines.insert(2 * len(lines) // 3, json.dumps(bad, separators=(",", ":")))
print("\n".join(lines))
