"""Independent-client check of the approval gate: the official Python MCP SDK (pinned) as the
human's client, on both approval channels a client can carry —

  * elicitation/create on a legacy (initialize) session, and
  * InputRequiredResult rounds on a 2026-07-28 session (mode="auto" negotiates it),

each approving (the service restarts: its main PID changes) and declining (nothing runs: the
PID stays). Exits non-zero on the first failure.

    python_gate.py RUNBOOK_MCP_BINARY LAB_CONFIG
"""

import asyncio
import subprocess
import sys
import tempfile
from pathlib import Path

import mcp_types as types
from mcp import StdioServerParameters
from mcp.client.client import Client

REPO = Path(__file__).resolve().parents[2]
ARGS = {"hosts": ["mcp-02"], "service": "cctelegram-mcp", "reason": "python gate check"}


def main_pid() -> str:
    out = subprocess.run(
        [REPO / "lab/lab.sh", "exec", "mcp-02", "systemctl", "show", "-p", "MainPID", "cctelegram-mcp"],
        check=True, capture_output=True, text=True,
    )
    return out.stdout.strip()


def gate_config(lab_config: str) -> str:
    """The lab config with its own state directory and a short approval wait."""
    state = tempfile.mkdtemp(prefix="rb-pygate-")
    lines = [
        f'state_dir = "{state}/state"' if l.startswith("state_dir = ") else l
        for l in Path(lab_config).read_text().splitlines()
    ]
    path = Path(state) / "runbook-mcp.toml"
    path.write_text("\n".join(lines) + "\n[approval]\nwait_secs = 2\n")
    return str(path)


def answering(approve: bool, asked: list):
    async def callback(context, params):
        asked.append(params.message)
        assert "systemctl restart cctelegram-mcp" in params.message, params.message
        if approve:
            return types.ElicitResult(action="accept", content={"approve": True})
        return types.ElicitResult(action="decline")
    return callback


async def case(binary: str, config: str, mode: str, approve: bool) -> None:
    asked: list = []
    server = StdioServerParameters(command=binary, args=["--config", config])
    before = main_pid()
    async with Client(server, mode=mode, elicitation_callback=answering(approve, asked)) as client:
        res = await client.call_tool("restart_service", ARGS)
    after = main_pid()
    text = res.content[0].text
    assert len(asked) == 1, f"{mode}: asked {len(asked)} times"
    if approve:
        assert res.is_error is False, f"{mode}: {text}"
        channels = res.structured_content["approval"]["channels"]
        want = "elicitation" if mode == "legacy" else "input_required"
        assert channels == [want], f"{mode}: {channels}"
        assert before != after, f"{mode}: approved but the service did not restart"
    else:
        assert res.is_error is True and text.startswith("refused (declined)"), f"{mode}: {text}"
        assert before == after, f"{mode}: declined but the service restarted"
    print(f"ok  {mode:6} {'approve' if approve else 'decline'}: {text[:90]}")


async def main(binary: str, lab_config: str) -> None:
    config = gate_config(lab_config)
    for mode in ("legacy", "auto"):
        for approve in (False, True):
            await case(binary, config, mode, approve)
    print("python gate: 4 checks passed")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
