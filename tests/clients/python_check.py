"""Independent-client check: the official Python MCP SDK drives runbook-mcp against the lab.

Every tool is called on all hosts; every structuredContent must validate against the tool's
outputSchema (the SDK's own types, jsonschema for the check), and a bad argument must come back
as isError naming the field. Exits non-zero on the first failure.

    python_check.py RUNBOOK_MCP_BINARY CONFIG
"""

import asyncio
import sys

import jsonschema
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client

HOSTS = {"mcp-01", "mcp-02", "mcp-03"}
CALLS = [
    ("run_diagnostics", {}),
    ("check_service_status", {}),
    ("check_health", {}),
    ("check_system_resources", {"top": 3}),
    ("get_recent_logs", {"lines": 3}),
    ("get_bridge_status", {}),
    ("query_metrics", {"preset": "request_rate"}),
    ("query_metrics", {"query": "up", "range": "1m"}),
    ("query_metrics", {"query": "0/0"}),  # NaN must still match the schema
]


async def main(binary: str, config: str) -> None:
    params = StdioServerParameters(command=binary, args=["--config", config])
    async with stdio_client(params) as (read, write):
        async with ClientSession(read, write) as session:
            init = await session.initialize()
            assert init.server_info.name == "runbook-mcp", init.server_info
            tools = {t.name: t for t in (await session.list_tools()).tools}
            for t in tools.values():
                assert t.output_schema, f"{t.name} has no outputSchema"
                assert t.annotations is not None, t.name
            for name, _ in CALLS:
                assert tools[name].annotations.read_only_hint is True, name
            assert tools["restart_service"].annotations.read_only_hint is False
            for name, args in CALLS:
                res = await session.call_tool(name, args)
                text = res.content[0].text
                assert res.is_error is False, f"{name} {args}: {text}"
                jsonschema.validate(res.structured_content, tools[name].output_schema)
                per_host = res.structured_content.get("hosts")
                if per_host is not None:
                    assert {h["host"] for h in per_host} == HOSTS, per_host
                    assert all(h["status"] == "ok" for h in per_host), per_host
                print(f"ok  {name} {args}: {text[:110]}")
            res = await session.call_tool("check_health", {"hosts": ["mcp-01;reboot"]})
            assert res.is_error is True
            assert "`hosts[0]`" in res.content[0].text, res.content[0].text
            print("ok  bad argument refused, field named")
    print(f"python client: {len(CALLS) + 1} checks passed")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
