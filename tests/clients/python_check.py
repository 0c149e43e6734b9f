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

APP_HOSTS = {"mcp-01", "mcp-02", "mcp-03"}
ALL_HOSTS = APP_HOSTS | {"db-01"}
# (tool, arguments, the hosts that must answer by default)
CALLS = [
    ("run_diagnostics", {}, ALL_HOSTS),
    ("check_service_status", {}, ALL_HOSTS),
    ("check_health", {}, ALL_HOSTS),
    ("check_system_resources", {"top": 3}, ALL_HOSTS),
    ("get_recent_logs", {"lines": 3}, APP_HOSTS),  # the hosts running the service
    ("get_bridge_status", {}, APP_HOSTS),  # the hosts running a bridge
    ("query_metrics", {"preset": "request_rate"}, None),
    ("query_metrics", {"query": "up", "range": "1m"}, None),
    ("query_metrics", {"query": "0/0"}, None),  # NaN must still match the schema
    ("check_database", {}, None),
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
            for name, _, _ in CALLS:
                assert tools[name].annotations.read_only_hint is True, name
            assert tools["restart_service"].annotations.read_only_hint is False
            for name, args, hosts in CALLS:
                res = await session.call_tool(name, args)
                text = res.content[0].text
                assert res.is_error is False, f"{name} {args}: {text}"
                jsonschema.validate(res.structured_content, tools[name].output_schema)
                per_host = res.structured_content.get("hosts")
                assert (per_host is None) == (hosts is None), (name, per_host)
                if per_host is not None:
                    assert {h["host"] for h in per_host} == hosts, per_host
                    assert all(h["status"] == "ok" for h in per_host), per_host
                print(f"ok  {name} {args}: {text[:110]}")
            res = await session.call_tool("check_health", {"hosts": ["mcp-01;reboot"]})
            assert res.is_error is True
            assert "`hosts[0]`" in res.content[0].text, res.content[0].text
            print("ok  bad argument refused, field named")
            # A mutating tool's dry run: the plan (SQL steps) matches the outputSchema too.
            name = "run_database_maintenance"
            args = {"operation": "vacuum_analyze", "reason": "schema check", "dry_run": True}
            res = await session.call_tool(name, args)
            assert res.is_error is False, res.content[0].text
            jsonschema.validate(res.structured_content, tools[name].output_schema)
            steps = res.structured_content["plan"]["stages"][0]["steps"]
            sql = [s for s in steps if s["step"] == "sql"]
            assert len(sql) == 1 and sql[0]["statement"] == "VACUUM ANALYZE", steps
            assert sql[0]["target"].endswith(":5432/cctelegram"), sql[0]  # where it runs
            print(f"ok  {name} dry run: {res.content[0].text[:110]}")
    print(f"python client: {len(CALLS) + 2} checks passed")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
