//! The `runbook-mcp` binary: parse the command line and hand over to `cli`.

fn main() -> std::process::ExitCode {
    runbook_mcp::cli::main()
}
