use super::*;

fn err(text: &str) -> ConfigError {
    Config::parse(text, "fleet.toml").unwrap_err()
}

#[test]
fn embedded_default_is_the_local_machine_only() {
    let c = Config::load(None).unwrap();
    assert_eq!(c.source, EMBEDDED_NAME);
    assert_eq!(c.hosts.len(), 1);
    assert_eq!(c.hosts[0].name, "local");
    assert_eq!(c.hosts[0].target, Target::Local);
    assert!(c.services.is_empty());
}

#[test]
fn unknown_fields_are_rejected_with_file_and_position() {
    let e = err("[hosts.a]\naddress = \"10.0.0.1\"\nsudoo = true\n");
    assert_eq!(e.file, "fleet.toml");
    assert_eq!(e.field, "line 3, column 1");
    assert!(e.message.contains("unknown field `sudoo`"), "{}", e.message);
}

#[test]
fn cross_references_name_the_field() {
    let e = err("[hosts.a]\n[services.web]\nmanager = \"systemd\"\nhosts = [\"a\", \"b\"]\n");
    assert_eq!(e.field, "services.web.hosts[1]");
    assert!(e.message.contains("unknown host `b`"));

    let e = err("[services.web]\nmanager = \"systemd\"\napi_key_secret = \"key\"\n");
    assert_eq!(e.field, "services.web.api_key_secret");

    let e = err("[hosts.a]\naddress = \"10.0.0.1\"\nssh = { user = \"ops\" }\n");
    assert_eq!(e.field, "ssh.known_hosts");

    let e = err("[hosts.a]\n[services.web]\nmanager = \"systemd\"\nunit = \"web;reboot\"\n");
    assert_eq!(e.field, "services.web.unit");
    assert!(e.message.contains("shell metacharacter"));

    let e = err("[server]\ncommand_timeout_secs = 0\n");
    assert_eq!(e.field, "server.command_timeout_secs");

    let e = err("[secrets.k]\nenv = \"A\"\nfile = \"/b\"\n");
    assert_eq!(e.field, "secrets.k");

    let e = err(
        "[hosts.a]\n[services.web]\nmanager = \"systemd\"\nlogs = { app = \"relative/path\" }\n",
    );
    assert_eq!(e.field, "services.web.logs.app");
}

#[test]
fn ssh_hosts_resolve_defaults() {
    let c = Config::parse(
        "[ssh]\nknown_hosts = \"/k\"\n[hosts.web-1]\naddress = \"10.0.0.5\"\nssh = { user = \"ops\", port = 2222 }\nsudo = true\n\
         [services.app]\nmanager = \"systemd\"\nhealth_url = \"http://{address}:8080/health\"\n",
        "f",
    )
    .unwrap();
    let h = &c.hosts[0];
    assert_eq!(
        h.target,
        Target::Ssh(SshTarget {
            host: "10.0.0.5".into(),
            user: Some("ops".into()),
            port: Some(2222),
            proxy_jump: vec![]
        })
    );
    assert!(h.sudo);
    let s = &c.services[0];
    assert_eq!(s.unit, "app");
    assert_eq!(s.hosts, vec!["web-1".to_string()]);
    assert_eq!(
        Service::url_for(s.health_url.as_deref().unwrap(), h),
        "http://10.0.0.5:8080/health"
    );
}

#[test]
fn secrets_load_by_value_and_mask() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("key");
    std::fs::write(&f, "s3cr3t-value\n").unwrap();
    let c = Config::parse(&format!("[secrets.api]\nfile = \"{}\"\n", f.display()), "f").unwrap();
    assert_eq!(c.secrets.get("api").unwrap(), "s3cr3t-value");
    assert_eq!(c.secrets.mask("key=s3cr3t-value!"), "key=****!");
    assert!(!format!("{:?}", c.secrets).contains("s3cr3t"));
}

#[test]
fn schema_describes_the_file() {
    let v = Config::json_schema();
    let props = v["properties"].as_object().unwrap();
    for k in [
        "server",
        "ssh",
        "secrets",
        "prometheus",
        "load_balancer",
        "hosts",
        "services",
        "diagnostics",
    ] {
        assert!(props.contains_key(k), "{k}");
    }
}

#[test]
fn endpoint_urls_take_secrets_by_placeholder() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("tok");
    std::fs::write(&f, "123:abc").unwrap();
    let text = format!(
        "[secrets.bot]\nfile = \"{}\"\n[[diagnostics.endpoints]]\nname = \"telegram_api\"\nurl = \"https://api.example/bot{{secret:bot}}/getMe\"\n",
        f.display()
    );
    let c = Config::parse(&text, "f").unwrap();
    let ep = &c.diagnostics.endpoints[0];
    assert_eq!(
        ep.resolved_url(&c.secrets).unwrap(),
        "https://api.example/bot123:abc/getMe"
    );
    assert!(!ep.url.contains("abc"));

    let e = err("[[diagnostics.endpoints]]\nname = \"t\"\nurl = \"https://x/{secret:nope}\"\n");
    assert_eq!(e.field, "diagnostics.endpoints[0].url");
}
